"""What the hostile-input tests check after a bad input: the command's error line, and that the
files already written did not change."""

from __future__ import annotations

from pathlib import Path


def error_line(code: int, err: str, *needles: str) -> str:
    """The ``error:`` line of a failed command: exit 1, no traceback, one line holding every needle."""
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under ``root``, to show that nothing changed."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
