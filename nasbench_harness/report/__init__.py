"""Self-contained HTML reports of many runs (figures inlined as SVG, no network needed)."""
