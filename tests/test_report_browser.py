"""The report as a reader sees it, in headless Chromium at 1280 px: no horizontal overflow, every
figure drawn, hover text under the pointer, no console message, no request beyond the file itself,
and a page height bounded for a quickstart-sized report.

Needs Debian's Chromium (``apt-get install -y chromium``; ``.ci/run`` installs it) and the
``playwright`` package (the ``dev`` extra) to drive it; playwright's own browser download is not
used. Without Chromium these tests FAIL with that advice; deselect them with ``-m "not browser"``.

Artefacts: each run writes ``reports/test-artifacts/quickstart-1280.png`` (a full-page screenshot of
the quickstart-like report at 1280 px) and ``reports/test-artifacts/quickstart.html`` (the report
itself) in the repository, a folder git ignores.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analysis_runs import NB201_ARCH, write_baseline, write_run, write_sweep

from nasbench_harness.report.build import FIGURES, write_report

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
WIDTH = 1280
# px: the quickstart report measured 1,790 px when this was set (a one-panel-per-screen layout
# measured 5,700 px for these runs); more means a figure or table grew by about a screen.
QUICKSTART_MAX_HEIGHT = 2200
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = (
    "install Debian's Chromium (`apt-get install -y chromium`) and the dev extra (`pip install -e '.[dev]'`, "
    "for playwright; do not run `playwright install`), or deselect these tests with -m 'not browser'"
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(f"no Chromium found on PATH: {INSTALL}", pytrace=False)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {INSTALL}", pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=FLAGS)
        yield chromium
        chromium.close()


def _quickstart_columns(method: str, seed: int, epochs: int = 100) -> dict[str, Any]:
    """Trajectories shaped like a real search: DARTS collapses into parameter-free ops while its
    eigenvalue and gap grow; SDARTS-RS stays near a good cell. Seed noise is deterministic."""
    collapse = method == "darts"
    es = range(1, epochs + 1)
    wobble = [math.sin(0.7 * e + 1.3 * seed) for e in es]
    test = [
        88 + 5 * (1 - math.exp(-e / 15)) - (18 * max(0, e - 40) / 60 if collapse else 0) + 0.4 * w + 0.3 * seed
        for e, w in zip(es, wobble, strict=True)
    ]
    valid = [45 + 40 * (1 - math.exp(-e / 25)) + 0.5 * w for e, w in zip(es, wobble, strict=True)]
    gap = [(25 * e / epochs if collapse else 6 + 2 * e / epochs) + 0.5 * w for e, w in zip(es, wobble, strict=True)]
    free = [min(6, e // 15) if collapse else 1 + (e + seed) % 2 for e in es]
    cols: dict[str, Any] = {
        "valid_acc": valid,
        "final_valid_acc": [v - g for v, g in zip(valid, gap, strict=True)],
        "n_parameter_free": free,
        "n_skip_connect": [min(f, 4) for f in free],
        "eigenvalue": [(0.05 + (0.004 if collapse else 0.0008) * e + 0.01 * seed) if e % 2 == 0 else None for e in es],
        "genotype": NB201_ARCH,
    }
    for dataset, offset, scale in (("cifar10", 0.0, 1.0), ("cifar100", -22.0, 1.4), ("imagenet16_120", -48.0, 1.6)):
        t = [offset + 94 - (94 - x) * scale for x in test]
        cols[f"nb201_{dataset}_test"] = t
        cols[f"nb201_{dataset}_valid"] = [x - 2.5 for x in t]
    cols["regret_test"] = [94.37 - x for x in test]
    cols["regret_valid"] = [91.61 - (x - 2.5) for x in test]
    return cols


def _render(browser: Any, page_path: Path, screenshot: Path | None = None) -> dict[str, Any]:
    """Open the report at 1280 px; measure it, collect console messages and requests."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    messages: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri(), wait_until="load")
    measured = page.evaluate(
        """() => {
        const figures = [...document.querySelectorAll('figure')].map(f => {
            const svg = f.querySelector('svg');
            const box = svg ? svg.getBoundingClientRect() : null;
            return {id: f.id, width: box ? box.width : 0, height: box ? box.height : 0,
                    titles: f.querySelectorAll('title').length};
        });
        return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
                height: document.documentElement.scrollHeight, figures};
    }"""
    )
    measured["hover"] = _hover_text(page)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return measured | {"messages": messages, "requests": requests}


def _hover_text(page: Any) -> str:
    """The tooltip the browser would show with the pointer on the first hover point of the grid:
    the ``<title>`` of the element under the pointer or its nearest ancestor with one."""
    return page.evaluate(
        """() => {
        const point = document.querySelector('#figure-trajectories use title, #figure-trajectories path title');
        if (!point) return '';
        const shape = point.parentElement;
        shape.scrollIntoView({block: 'center'});
        const box = shape.getBoundingClientRect();
        let hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
        while (hit && !(hit.querySelector && hit.querySelector(':scope > title'))) hit = hit.parentElement;
        return hit ? hit.querySelector(':scope > title').textContent : '';
    }"""
    )


def _check(measured: dict[str, Any], page_path: Path) -> None:
    assert measured["scrollWidth"] <= measured["innerWidth"], f"the page overflows sideways: {measured['scrollWidth']}"
    assert measured["messages"] == []
    assert set(measured["requests"]) == {page_path.as_uri()}  # self-contained: nothing else fetched
    figures = {f["id"]: f for f in measured["figures"]}
    assert set(figures) == {f"figure-{name}" for name, _, _ in FIGURES}
    for figure in figures.values():
        assert figure["width"] > 300 and figure["height"] > 150, figure
        assert figure["titles"] > 0, figure  # hover text on lines and points
    assert " · epoch " in measured["hover"] and "seed 0:" in measured["hover"], measured["hover"]


def test_quickstart_report_fits_a_1280px_screen(browser: Any, tmp_path: Path) -> None:
    """2 methods x 2 seeds on NB201 CIFAR-10, 100 epochs (the quickstart's shape): no overflow,
    every figure, no console message, at most QUICKSTART_MAX_HEIGHT px tall; screenshot kept."""
    root = tmp_path / "runs"
    write_sweep(root, ["darts", "sdarts-rs"], [0, 1], epochs=100, columns=_quickstart_columns)
    page_path = write_report([root], tmp_path / "report.html", title="quickstart", baseline="darts")
    measured = _render(browser, page_path, ARTIFACTS / "quickstart-1280.png")
    shutil.copyfile(page_path, ARTIFACTS / "quickstart.html")
    print(f"quickstart report at {WIDTH} px: {measured['scrollWidth']} px wide, {measured['height']} px tall")
    _check(measured, page_path)
    assert measured["height"] <= QUICKSTART_MAX_HEIGHT, measured["height"]


def test_many_spaces_failures_and_baselines_still_fit(browser: Any, tmp_path: Path) -> None:
    """NB201 on two data sets and two NB-1Shot1 spaces, a failed run with a long error, a long run
    path and a table-only baseline: still no overflow and no console message."""
    root = tmp_path / "runs"
    write_sweep(root, ["darts", "beta-darts", "sdarts-rs"], [0, 1], epochs=12)
    write_sweep(root, ["darts"], [0, 1], dataset="cifar100", epochs=12)
    write_sweep(root, ["darts", "beta-darts"], [0, 1], space="nb1shot1-1", epochs=12)
    write_sweep(root, ["darts"], [0], space="nb1shot1-3", epochs=12, in_benchmark=[True, False] * 6)
    error = "TrainingError: the loss became nan at epoch 3 " + "(a long explanation) " * 20
    write_run(root / ("a-very-long-run-directory-name-" * 4) / "failed", seed=5, epochs=1, status="failed", error=error)
    write_baseline(root / "rs")
    page_path = write_report([root], tmp_path / "report.html", baseline="darts")
    measured = _render(browser, page_path)
    _check(measured, page_path)
