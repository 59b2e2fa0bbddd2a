"""A sweep's report.html (`write_sweep_page`, by `experiments.report --sweep_dir`): the table of
settings × metrics (mean ± sd over seeds, units in the headers; click a header to sort), the
headline's training curves overlaid per setting, the sweep figures of `results.write_report`, a
link to each run's page (`run_page.py`), and each run without results with the tail of its log.
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from bokeh.layouts import gridplot
from bokeh.models import NumeralTickFormatter
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from autoencoders import launch, results, run_page, sweeps
from autoencoders import workdir as workdirs
from autoencoders.pages import (
    PAGE_FILE,
    SPLIT_DASH,
    add_curve,
    document,
    figure_html,
    number,
    section,
    table,
    write_page,
)


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
                add_curve(p, xs, ys, color, f"{name} ({s})", SPLIT_DASH.get(s, "solid"), tooltips)
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
                run_page.write_run_page_of(r.workdir)
            except (OSError, ValueError) as e:
                logging.warning("No report.html for %s: %s", r.workdir, e)
        if os.path.exists(page):
            pages[r.workdir] = os.path.relpath(page, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    page = sweep_page(sweep_dir, found, x, figure_paths, pages)
    return write_page(os.path.join(out_dir, PAGE_FILE), page)
