"""report.html: one self-contained page per run and per sweep, to open offline or send as a file.

Everything a page shows is inside it: BokehJS (the interactive plots), the styles and the small
script of `pages_assets/`, and every image as an inline PNG; it makes no network request.

- **A run** (`write_run_page`, written by `experiments.evaluate` and `experiments.report
  --workdir`): its config (first the fields that differ from its config file's defaults), the
  training curves (train and evaluation split per epoch, units on the axes), eval.json as a table
  with units and standard errors, every evaluation figure, and the **latent explorer**
  (`explorer.py`): the test codes coloured by label; hovering a point shows its image and
  reconstruction, and the cursor anywhere on the plane shows the decoder's mean at that point
  (precomputed on a grid, one per label for conditional models, with a label selector).
- **A sweep** (`write_sweep_page`, by `experiments.report --sweep_dir`): the table of settings ×
  metrics (mean ± sd over seeds, units in the headers; click a header to sort), the headline's
  training curves overlaid per setting, the sweep figures of `results.write_report`, a link to
  each run's page, and each run without results with the tail of its log.
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from bokeh import events
from bokeh.embed import components
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, NumeralTickFormatter, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.resources import Resources
from PIL import Image

from autoencoders import explorer, launch, quantities, results, sweeps
from autoencoders import workdir as workdirs

if TYPE_CHECKING:
    from autoencoders.evaluation import Options, Run

PAGE_FILE = "report.html"
_ASSETS = resources.files("autoencoders") / "pages_assets"
_SPLIT_DASH = {"train": "dashed"}  # the evaluation split solid, train dashed, as in results.py


# ---------------------------------------------------------------------------------------------
# Pieces of a page
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# A run's page
# ---------------------------------------------------------------------------------------------


def config_defaults(family: str) -> dict[str, Any] | None:
    """config.json as `configs/<family>.py` builds it with no argument, or None without one."""
    try:
        module = importlib.import_module(f"configs.{family}")
    except ModuleNotFoundError:
        return None
    return workdirs.config_json(module.get_config())


def config_section(config: Mapping[str, Any]) -> str:
    family = config["model"]["family"]
    flat = workdirs.flatten(dict(config))
    defaults = config_defaults(family)
    parts = []
    if defaults is not None:
        base = workdirs.flatten(defaults)
        changed = sorted(k for k in flat.keys() | base.keys() if flat.get(k) != base.get(k))
        rows = [
            (
                f"<code>{html.escape(k)}</code>",
                html.escape(repr(flat.get(k))),
                html.escape(repr(base.get(k))),
            )
            for k in changed
        ]
        parts.append(
            f"<p>Fields that differ from <code>configs/{html.escape(family)}.py</code>'s "
            "defaults:</p>"
            + (
                table(["field", "this run", "default"], rows, id="config-diff")
                if rows
                else "<p>none</p>"
            )
        )
    full = table(
        ["field", "value"],
        [(f"<code>{html.escape(k)}</code>", html.escape(repr(v))) for k, v in flat.items()],
    )
    parts.append(f"<details><summary>The whole config</summary>{full}</details>")
    return section("Config", "\n".join(parts), "config")


def curve_plots(result: results.Result, term_units: Mapping[str, str]) -> Any:
    """One plot per metric: its value per epoch, evaluation split solid and train dashed."""
    split = result.config["data"]["eval_split"]
    names: dict[str, None] = {result.headline: None}
    for row in result.rows:
        if row["split"] in (split, "train"):
            ignored = (*results.ROW_FIELDS, *results.BOOKKEEPING)
            names.update(dict.fromkeys(k for k in row if k not in ignored))
    plots = []
    for name in names:
        unit = results.short_unit(term_units.get(name, ""))
        p = figure(
            width=380,
            height=260,
            title=name,
            x_axis_label="epoch",
            y_axis_label=unit or name,
            tools="pan,wheel_zoom,box_zoom,reset,save",
            name=f"curve-{name}",
        )
        for i, s in enumerate((split, "train")):
            by_epoch = {r["epoch"]: r[name] for r in result.rows if r["split"] == s and name in r}
            epochs = sorted(by_epoch)
            tooltips = [("split", s), ("epoch", "@x"), (f"{name} ({unit})", "@y{0.0000}")]
            dash = _SPLIT_DASH.get(s, "solid")
            values = [by_epoch[e] for e in epochs]
            add_curve(p, epochs, values, Category10_10[i], s, dash, tooltips)
        p.legend.location = "top_right"
        plots.append(p)
    return gridplot(plots, ncols=3)


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


def eval_rows(tree: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """(part, name, value, ± stderr, unit) for every number of an eval.json but timings."""
    rows = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict) and isinstance(node.get("value"), int | float):
            if node.get("unit") != "seconds":
                stderr = node.get("stderr")
                rows.append(
                    (
                        html.escape(path[0]),
                        html.escape("/".join(path[1:])),
                        (number(node["value"]), node["value"]),
                        "" if stderr is None else f"± {number(stderr)}",
                        html.escape(str(node.get("unit", ""))),
                    )
                )
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])

    for part in ("density", "reduction", "manifold", "representation"):
        walk(tree.get(part), [part])
    return rows


def explorer_plot(view: explorer.Explorer) -> Any:
    """The codes as a scatter coloured by label; hover and cursor moves call the page's script."""
    low, high = (
        explorer.plane_box(view.points)
        if not len(view.grid_x)
        else (
            np.array([view.grid_x[0], view.grid_y[0]]),
            np.array([view.grid_x[-1], view.grid_y[-1]]),
        )
    )
    p = figure(
        width=580,
        height=520,
        title="Test codes (hover a point; move over the plane)",
        x_axis_label=view.axes[0],
        y_axis_label=view.axes[1],
        x_range=Range1d(low[0], high[0]),
        y_range=Range1d(low[1], high[1]),
        tools="pan,wheel_zoom,reset,save",
        name="explorer",
        match_aspect=False,
    )
    colors = [Category10_10[int(y) % 10] if y >= 0 else "#444444" for y in view.labels]
    source = ColumnDataSource(
        {
            "x": view.points[:, 0],
            "y": view.points[:, 1],
            "label": [str(y) for y in view.labels],
            "index": np.arange(len(view.labels)),
            "color": colors,
        }
    )
    labelled = bool(np.all(view.labels >= 0))
    legend = {"legend_group": "label"} if labelled else {}
    dots = p.scatter("x", "y", source=source, color="color", size=6, alpha=0.7, **legend)
    if labelled:
        p.add_layout(p.legend[0], "right")
        p.legend.title = "label"
    p.add_tools(
        HoverTool(
            renderers=[dots],
            tooltips=None,
            callback=CustomJS(
                code="window.explorer && window.explorer.hoverPoint(cb_data.index.indices)"
            ),
        )
    )
    p.js_on_event(
        events.MouseMove,
        CustomJS(code="window.explorer && window.explorer.moveTo(cb_obj.x, cb_obj.y)"),
    )
    return p


def explorer_section(view: explorer.Explorer, indices: np.ndarray, conditional: bool) -> str:
    """The explorer's plot, its image panels and its data (`indices`: the points' test images)."""
    n, h, w, _ = view.images.shape
    columns = max(1, math.ceil(math.sqrt(n)))
    grid_columns = len(view.grid_x)
    data = {
        "height": h,
        "width": w,
        "columns": columns,
        "images": sprite(view.images, columns),
        "reconstructions": sprite(view.reconstructions, columns),
        "labels": view.labels.tolist(),
        "indices": np.asarray(indices).tolist(),
        "grid_x": view.grid_x.tolist(),
        "grid_y": view.grid_y.tolist(),
        "grid_columns": grid_columns,
        "grid_latents": view.grid_latents.astype(np.float32).tolist(),
        "decoded": {str(k): sprite(v, grid_columns) for k, v in view.decoded.items()},
        "axes": list(view.axes),
    }
    selector = ""
    if conditional:
        options = "".join(f'<option value="{k}">{k}</option>' for k in view.decoded)
        selector = (
            f'<label>decode with label y = <select id="explorer-label">{options}</select></label>'
        )
    note = (
        "" if view.decoded else "<p>The t-SNE plane has no inverse: only hovering points works.</p>"
    )
    scale = max(1, 112 // max(h, w))
    content = f"""
<div class="explorer">
  <div id="explorer-plot">{{{{plot:explorer}}}}</div>
  <div class="explorer-side">
    {selector}
    <h3>Decoded at the cursor</h3>
    <canvas id="explorer-decoded" width="{w}" height="{h}" style="width:{w * scale}px"></canvas>
    <div id="explorer-z" class="caption">move over the plane</div>
    <h3>Hovered test image and its reconstruction</h3>
    <canvas id="explorer-image" width="{w}" height="{h}" style="width:{w * scale}px"></canvas>
    <canvas id="explorer-recon" width="{w}" height="{h}" style="width:{w * scale}px"></canvas>
    <div id="explorer-point" class="caption">hover a point</div>
    {note}
  </div>
</div>
<script type="application/json" id="explorer-data">{json.dumps(data)}</script>"""
    return section("Latent explorer", content, "explorer")


def run_page(
    run: Run, eval_tree: Mapping[str, Any] | None, options: Options, embeddings=None
) -> str:
    """The HTML of a run's page (see the module docstring)."""
    sections, plots = [], {}
    config = workdirs.config_json(run.config)
    sections.append(f'<p class="caption">{html.escape(run.workdir)}</p>')
    sections.append(config_section(config))
    result = results.load_result(0, run.workdir, {})
    if result is not None:
        _, term_units = results.declared_units(run.workdir, config)
        plots["curves"] = curve_plots(result, term_units)
        sections.append(section("Training curves", "{{plot:curves}}", "curves"))
    eval_tree = eval_tree or {}
    if eval_tree:
        rows = eval_rows(eval_tree)
        content = table(["part", "metric", "value", "stderr", "unit"], rows, id="eval-table")
        sections.append(section(f"Evaluation (epoch {eval_tree.get('epoch')})", content, "eval"))
    if embeddings is not None:
        idx = embeddings["indices"]
    else:
        idx = quantities.subset_indices(len(run.y_test), options.manifold_examples, options.seed)
    x, y = run.x_test[idx], run.y_test[idx]
    view = explorer.explore(run.model, run.params, x, y, options.latent_projection, options.seed)
    plots["explorer"] = explorer_plot(view)
    sections.append(explorer_section(view, idx, run.model.conditional))
    paths = [os.path.join(run.workdir, f) for f in eval_tree.get("figures", [])]
    figures = [figure_html(p, os.path.relpath(p, run.workdir)) for p in paths if os.path.exists(p)]
    if figures:
        sections.append(section("Figures", "\n".join(figures), "figures"))
    return document(run.title, sections, plots)


def write_run_page(
    run: Run, eval_tree: Mapping[str, Any] | None, options: Options, embeddings=None
) -> str:
    """Writes `<workdir>/report.html` (atomically); returns its path."""
    path = os.path.join(run.workdir, PAGE_FILE)
    page = run_page(run, eval_tree, options, embeddings)
    with open(path + ".tmp", "w") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path


def write_run_page_of(workdir: str, options: Options | None = None) -> str:
    """`write_run_page` for a run directory: its latest checkpoint and its eval.json, if any."""
    from autoencoders import evaluation  # noqa: PLC0415 - evaluation imports this module

    options = options or evaluation.Options()
    eval_path = os.path.join(workdir, workdirs.EVAL_FILE)
    eval_tree = workdirs.read_json(eval_path) if os.path.exists(eval_path) else None
    epoch = eval_tree.get("epoch") if eval_tree else None
    run = evaluation.load_run(workdir, epoch, options.seed)
    return write_run_page(run, eval_tree, options)


# ---------------------------------------------------------------------------------------------
# A sweep's page
# ---------------------------------------------------------------------------------------------


def sweep_curves(found: Sequence[results.Result], x_key: str | None) -> Any:
    """The headline vs training examples seen (log x), one plot per setting of the keys other
    than x, one colour per setting (its seeds share it): evaluation split solid, train dashed."""
    groups = results.lines_by(found, x_key) if x_key else {"": list(found)}
    plots = []
    for title, members in groups.items():
        split = members[0].config["data"]["eval_split"]
        headline = members[0].headline
        unit = results.short_unit(members[0].units.get(f"{split}/{headline}", ""))
        p = figure(
            width=900,
            height=360,
            title=title or "all runs",
            x_axis_type="log",
            x_axis_label="training examples seen",
            y_axis_label=f"{split} and train {headline} ({unit})",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        p.xaxis.formatter = NumeralTickFormatter(format="0.[0]a")  # 60k, 1.2m

        # One colour per line of the plot: the value of x (else the whole setting).
        def line_name(r: results.Result) -> str:
            shown = {x_key: r.setting[x_key]} if x_key in r.setting else r.setting
            return sweeps.run_name(shown)

        ordered = sorted(members, key=lambda r: (results.value_order(r.setting.get(x_key)), r.seed))
        names = list(dict.fromkeys(line_name(r) for r in ordered))
        for r in ordered:
            name = line_name(r)
            color = Category10_10[names.index(name) % 10]
            for s in (split, "train"):
                xs, ys = results.curve(r, s, r.headline)
                tooltips = [("run", f"{sweeps.run_name(r.setting)} seed {r.seed}"), ("split", s)]
                tooltips += [("examples", "@x{0,0}"), (headline, "@y{0.000}")]
                add_curve(p, xs, ys, color, f"{name} ({s})", _SPLIT_DASH.get(s, "solid"), tooltips)
        p.add_layout(p.legend[0], "right")
        p.legend.label_text_font_size = "8pt"
        p.legend.click_policy = "hide"
        plots.append(p)
    return gridplot(plots, ncols=1)


def summary_table(found: Sequence[results.Result], pages: Mapping[str, str]) -> str:
    keys = results.setting_keys(found)
    columns = results.metric_columns(found)
    units = {c: u for r in found for c, u in r.units.items()}
    headers = [sweeps.short_key(k) for k in keys] + ["seeds", "epochs"]
    headers += [results.header(c, units.get(c, "")) for c in columns] + ["runs"]
    rows = []
    for members, row in zip(results.group(found), results.summarize(found), strict=True):
        cells: list[Any] = []
        for k in keys:
            value = row.setting.get(k, "")
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cells.append(
                (
                    html.escape(sweeps.value_text(value)),
                    value if numeric else sweeps.value_text(value),
                )
            )
        cells += [str(len(row.seeds)), ",".join(map(str, row.epochs))]
        for c in columns:
            mean, std = row.stats.get(c, (math.nan, math.nan))
            text = number(mean) + ("" if math.isnan(std) else f" ± {std:.2g}")
            cells.append((text, "" if math.isnan(mean) else mean))
        links = [
            f'<a href="{html.escape(pages[r.workdir])}">seed {r.seed}</a>'
            if r.workdir in pages
            else f"seed {r.seed} (no page)"
            for r in members
        ]
        cells.append(" ".join(links))
        rows.append(cells)
    return table(headers, rows, sortable=True, id="runs-table")


def unfinished_section(sweep_dir: str, found: Sequence[results.Result]) -> str:
    """Each run of the manifest without results, with the tail of its launch log."""
    have = {os.path.abspath(r.workdir) for r in found}
    items = []
    for run in launch.read_manifest(sweep_dir)["runs"]:
        workdir = os.path.join(sweep_dir, run["workdir"])
        dirs = [workdir]
        config_path = os.path.join(workdir, workdirs.CONFIG_FILE)
        if os.path.exists(config_path):
            dirs = workdirs.result_dirs(workdirs.read_config_json(config_path), workdir)
        if all(os.path.abspath(d) in have for d in dirs):
            continue
        tail = launch.log_tail(os.path.join(workdir, launch.LAUNCH_LOG))
        items.append(
            f'<details class="unfinished"><summary>[{run["id"]}] {html.escape(run["name"])}: '
            f"no evaluated epoch</summary><pre>{html.escape(tail)}</pre></details>"
        )
    if not items:
        return ""
    return section(
        "Runs without results (failed, running or not started)", "\n".join(items), "unfinished"
    )


def sweep_page(
    sweep_dir: str,
    found: Sequence[results.Result],
    x: str | None,
    figure_paths: Sequence[str],
    pages: Mapping[str, str],
) -> str:
    """The HTML of a sweep's page, of its `found` results (`results.load_results`)."""
    x_key = results.find_key(found, x or "latent_dim")
    manifest = launch.read_manifest(sweep_dir)
    sections = [
        f'<p class="caption">{html.escape(os.path.abspath(sweep_dir))}: '
        f"{len(manifest['runs'])} runs, {len(found)} with results. Click a header to sort.</p>",
        section("Runs", summary_table(found, pages), "runs"),
        section("Training curves", "{{plot:curves}}", "curves"),
    ]
    images = [figure_html(p, os.path.basename(p)) for p in figure_paths if p.endswith(".png")]
    if images:
        sections.append(section("Per-axis figures", "\n".join(images), "figures"))
    sections.append(unfinished_section(sweep_dir, found))
    title = f"Sweep {os.path.basename(os.path.abspath(sweep_dir))}"
    return document(title, sections, {"curves": sweep_curves(found, x_key)})


def write_sweep_page(
    sweep_dir: str,
    out_dir: str,
    x: str | None = None,
    figure_paths: Sequence[str] = (),
    run_pages: bool = True,
) -> str:
    """Writes `<out_dir>/report.html`; with `run_pages`, first each run's page that is missing
    (a run that cannot have one is listed without a link, with a log line saying why)."""
    found, _ = results.load_results(sweep_dir)
    pages = {}
    for r in found:
        page = os.path.join(r.workdir, PAGE_FILE)
        if run_pages and not os.path.exists(page):
            try:
                write_run_page_of(r.workdir)
            except (OSError, ValueError) as e:
                logging.warning("No report.html for %s: %s", r.workdir, e)
        if os.path.exists(page):
            pages[r.workdir] = os.path.relpath(page, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, PAGE_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(sweep_page(sweep_dir, found, x, figure_paths, pages))
    os.replace(path + ".tmp", path)
    return path
