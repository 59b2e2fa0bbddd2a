"""report.html's building blocks: one self-contained page per run (`run_page.py`) and per sweep
(`sweep_page.py`), to open offline or send as a file.

Everything a page shows is inside it: BokehJS (the interactive plots), the styles and the small
script of `pages_assets/`, and every image as an inline PNG; it makes no network request. This
module holds what both pages use: inline images, tables, sections, curves, the whole document
and its atomic write.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
from bokeh.embed import components
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.resources import Resources
from PIL import Image

PAGE_FILE = "report.html"
SPLIT_DASH = {"train": "dashed"}  # the evaluation split solid, train dashed, as in results.py
_ASSETS = resources.files("autoencoders") / "pages_assets"


def png_data_uri(pixels: np.ndarray) -> str:
    """An inline PNG of uint8 pixels (H, W), (H, W, 1) or (H, W, 3)."""
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_data_uri(path: str) -> str:
    """A PNG file inline, re-encoded with a 256-colour palette: a third of matplotlib's size for
    the same figure, with no colour a reader would tell apart."""
    with Image.open(path) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as the 0..255 levels a page shows (rounded; outside values clipped)."""
    return np.round(np.clip(np.asarray(images, np.float64), 0.0, 1.0) * 255).astype(np.uint8)


def sprite(images: np.ndarray, columns: int) -> str:
    """(N, H, W, C) images in [0, 1] as one inline PNG, image i at row i // columns, column
    i % columns: one file for the page's script to cut images from."""
    n, h, w, c = images.shape
    rows = max(1, math.ceil(n / columns))
    sheet = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(to_uint8(images)):
        r, col = divmod(i, columns)
        sheet[r * h : (r + 1) * h, col * w : (col + 1) * w] = image
    return png_data_uri(sheet)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, sortable: bool = False, **attrs
) -> str:
    """An HTML table; a cell is text or (text, sort value). `sortable`: headers sort on click."""
    extra = "".join(f' {k}="{html.escape(str(v))}"' for k, v in attrs.items())
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text, value = cell if isinstance(cell, tuple) else (cell, None)
            sort = "" if value is None else f' data-value="{html.escape(str(value))}"'
            cells.append(f"<td{sort}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table{cls}{extra}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def document(title: str, sections: Sequence[str], plots: Mapping[str, Any]) -> str:
    """A whole page: BokehJS, the page's style and script inline; `plots` (name -> Bokeh layout)
    rendered where a section holds `{{plot:name}}`."""
    script, divs = components(dict(plots)) if plots else ("", {})
    body = "\n".join(sections)
    for name, div in divs.items():
        body = body.replace(f"{{{{plot:{name}}}}}", div)
    bokeh_js = Resources(mode="inline", components=["bokeh"]).render_js()
    style = (_ASSETS / "report.css").read_text()
    page_js = (_ASSETS / "report.js").read_text()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data: blob:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline' 'unsafe-eval'">
<title>{html.escape(title)}</title>
<style>{style}</style>
{bokeh_js}
</head><body>
<h1>{html.escape(title)}</h1>
{body}
{script}
<script>{page_js}</script>
</body></html>
"""


def figure_html(path: str, caption: str) -> str:
    """A PNG file inline, with its caption."""
    return (
        f'<figure><img src="{file_data_uri(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def section(heading: str, content: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>\n{content}\n</section>'


def number(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4g}"


def add_curve(
    p: Any,
    xs: Sequence[float],
    ys: Sequence[float],
    color: str,
    legend: str,
    dash: str,
    tooltips: list[tuple[str, str]],
) -> None:
    """A line with a dot at each point (a single evaluation is still seen), hover showing
    `tooltips` (@x, @y); nothing for no points."""
    if not len(xs):
        return
    source = ColumnDataSource({"x": list(xs), "y": list(ys)})
    line = p.line("x", "y", source=source, color=color, line_width=2, line_dash=dash,
                  legend_label=legend)  # fmt: skip
    dots = p.scatter("x", "y", source=source, color=color, size=5, legend_label=legend)
    p.add_tools(HoverTool(renderers=[line, dots], tooltips=tooltips))


def write_page(path: str, page: str) -> str:
    """Writes `page` to `path` atomically (a reader never sees half a page); returns `path`."""
    with open(path + ".tmp", "w") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path
