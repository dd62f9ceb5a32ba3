"""The report opens in a real browser: headless Chromium renders it with no console messages (no
script errors, no resource it failed to load) and every section and figure in the DOM.

`.ci/run` installs Debian's Chromium; the test is skipped only where no Chromium is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from analysis_runs import write_run, write_sweep

from nasbench_harness.report.build import FIGURES, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (.ci/run installs Debian's chromium)")
def test_headless_chromium_renders_the_report_without_console_messages(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_sweep(root, ["darts", "beta-darts"], [0, 1])
    write_sweep(root, ["darts"], [0], space="nb1shot1-1")
    write_run(root / "failed", seed=5, epochs=1, status="failed", error="interrupted")
    page = write_report([root], tmp_path / "report.html")
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    dom = result.stdout
    for anchor in ("summary", "figures", "results", "coverage", "runs"):
        assert f'id="{anchor}"' in dom
    assert dom.count("<svg") >= len(FIGURES) + 1 and "interrupted" in dom
