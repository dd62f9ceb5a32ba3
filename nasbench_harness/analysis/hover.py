"""Hover text in SVG figures: a ``<title>`` on each line and point, which a browser shows as a
tooltip when the pointer rests on it (no JavaScript).

Drawing code tags an artist with :func:`add_hover` (one text for the whole line or collection,
and optionally one per point, in drawing order); :func:`svg_text` renders the figure as SVG and
writes those texts in as ``<title>`` elements. Matplotlib's SVG backend wraps an artist that has a
``gid`` in ``<g id="gid">``, with one ``<use>`` (or ``<path>``) per marker or scatter point, so the
point texts go on those in order. A count that does not match (a point clipped away) keeps only
the group's text rather than misplacing any.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from matplotlib.artist import Artist
from matplotlib.figure import Figure

SVG_NS = "http://www.w3.org/2000/svg"
_NAMESPACES = {
    "": SVG_NS,
    "xlink": "http://www.w3.org/1999/xlink",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "cc": "http://creativecommons.org/ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_REGISTRY = "_nbh_hover"  # attribute of the root Figure: gid -> (group text, point texts)
_GID_PREFIX = "nbh-hover-"


def add_hover(artist: Artist, text: str | None = None, points: Sequence[str] = ()) -> None:
    """Give ``artist`` (already added to a figure) the tooltip ``text`` and, per point, ``points``."""
    fig: Any = artist.figure
    while fig is not None and not isinstance(fig, Figure):  # a SubFigure: up to the root figure
        fig = fig.figure if fig.figure is not fig else None
    if not isinstance(fig, Figure):
        raise ValueError("add_hover: the artist is not in a figure yet")
    registry: dict[str, tuple[str | None, list[str]]] = fig.__dict__.setdefault(_REGISTRY, {})
    gid = f"{_GID_PREFIX}{len(registry)}"
    artist.set_gid(gid)
    registry[gid] = (text, list(points))


def hover_texts(fig: Figure) -> dict[str, tuple[str | None, list[str]]]:
    """The tooltips registered on ``fig``, by gid (empty when none)."""
    return dict(fig.__dict__.get(_REGISTRY, {}))


def svg_text(fig: Figure, *, id_prefix: str = "", **savefig_kwargs: Any) -> str:
    """The figure as an SVG document (XML declaration first) with its tooltips as ``<title>``s.

    ``id_prefix`` is put before the tooltip groups' ids, so several figures inlined in one HTML
    page keep unique ids. ``savefig_kwargs`` go to ``Figure.savefig`` (format is SVG)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", **savefig_kwargs)
    registry = hover_texts(fig)
    if not registry:
        return buffer.getvalue()
    for prefix, uri in _NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(buffer.getvalue())  # noqa: S314  # matplotlib's own output, not untrusted input
    for group in root.iter(f"{{{SVG_NS}}}g"):
        gid = group.get("id", "")
        if gid not in registry:
            continue
        text, points = registry[gid]
        shapes = _shapes(group) if points else []
        if points and len(shapes) == len(points):
            for shape, point in zip(shapes, points, strict=True):
                _title(shape, point)
        if text:
            _title(group, text)
        group.set("id", f"{id_prefix}{gid}")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + body + "\n"


def _shapes(group: ET.Element) -> list[ET.Element]:
    """The ``<use>`` elements drawn in ``group`` (markers, scatter points), else its ``<path>``s;
    definitions (``<defs>``) left out."""
    uses: list[ET.Element] = []
    paths: list[ET.Element] = []

    def walk(element: ET.Element) -> None:
        for child in element:
            tag = child.tag.rpartition("}")[2]
            if tag == "defs":
                continue
            if tag == "use":
                uses.append(child)
            elif tag == "path":
                paths.append(child)
            walk(child)

    walk(group)
    return uses or paths


def _title(element: ET.Element, text: str) -> None:
    title = ET.Element(f"{{{SVG_NS}}}title")
    title.text = text
    element.insert(0, title)
