"""A run's report.html (`write_run_page`, written by `experiments.evaluate` and `experiments.report
--workdir`): its config (first the fields that differ from its config file's defaults), the
training curves (train and evaluation split per epoch, units on the axes), eval.json as a table
with units and standard errors, every evaluation figure, and the **latent explorer**
(`explorer.py`): the test codes coloured by label; hovering a point shows its image and
reconstruction, and the cursor anywhere on the plane shows the decoder's mean at that point
(precomputed on a grid, one per label for conditional models, with a label selector).
"""

from __future__ import annotations

import html
import importlib
import json
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from bokeh import events
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from autoencoders import explorer, quantities, results
from autoencoders import workdir as workdirs
from autoencoders.pages import (
    PAGE_FILE,
    SPLIT_DASH,
    add_curve,
    document,
    figure_html,
    number,
    section,
    sprite,
    table,
    write_page,
)

if TYPE_CHECKING:
    from autoencoders.evaluation import Options, Run


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
            dash = SPLIT_DASH.get(s, "solid")
            values = [by_epoch[e] for e in epochs]
            add_curve(p, epochs, values, Category10_10[i], s, dash, tooltips)
        p.legend.location = "top_right"
        plots.append(p)
    return gridplot(plots, ncols=3)


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
    return write_page(
        os.path.join(run.workdir, PAGE_FILE), run_page(run, eval_tree, options, embeddings)
    )


def write_run_page_of(workdir: str, options: Options | None = None) -> str:
    """`write_run_page` for a run directory: its latest checkpoint and its eval.json, if any."""
    from autoencoders import evaluation  # noqa: PLC0415 - evaluation imports this module

    options = options or evaluation.Options()
    eval_path = os.path.join(workdir, workdirs.EVAL_FILE)
    eval_tree = workdirs.read_json(eval_path) if os.path.exists(eval_path) else None
    epoch = eval_tree.get("epoch") if eval_tree else None
    run = evaluation.load_run(workdir, epoch, options.seed)
    return write_run_page(run, eval_tree, options)
