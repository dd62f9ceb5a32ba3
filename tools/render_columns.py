"""Rewrite the column tables of results/README.md from nasbench_harness.tracking.schema.

Each table sits between ``<!-- columns:SCOPE -->`` and ``<!-- /columns -->``; the prose around
them is kept. ``python tools/render_columns.py`` rewrites the file; ``--check`` exits 1 when it
is out of date (tests/test_schema.py does the same check).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nasbench_harness.tracking.schema import markdown

README = Path(__file__).resolve().parents[1] / "results" / "README.md"
BLOCK = re.compile(r"(<!-- columns:(\w+) -->\n)(.*?)(<!-- /columns -->)", re.S)


def render(text: str) -> str:
    """``text`` with every column block replaced by the schema's table."""
    return BLOCK.sub(lambda m: f"{m.group(1)}{markdown(m.group(2))}\n{m.group(4)}", text)


def main(argv: list[str]) -> int:
    text = README.read_text()
    rendered = render(text)
    if "--check" in argv:
        return 0 if rendered == text else 1
    README.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
