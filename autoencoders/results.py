"""Results of a sweep: what its runs wrote, grouped by setting and summarised over seeds.

`load_results(sweep_dir)` reads the manifest and, for every run or vmapped member, its config.json,
the final rows of metrics.jsonl and the numbers of eval.json, as `Result`s. What a run is judged
by (its `headline` metric) and the unit of every metric come from the run itself: the last `start`
event of its metrics.jsonl, or for runs written before start events carried them, the family
contract of its config (`models.base.Model.headline`, `term_units`); eval.json numbers carry their
own unit. `summarize` groups results that differ only in their seed (an outer `seed` axis or
vmapped seed members) into `Row`s of mean ± sample std, which `markdown_table` and `write_csv`
print with a short unit in each header; `write_report` writes the tables and the sweep figures
of `plots.py` (the headline vs a swept value, and training curves).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from autoencoders import data, launch, metrics, models, plots, sweeps
from autoencoders import workdir as workdirs

SEED_KEY = "seed"
# Bookkeeping that training logs beside the results; not in the tables (unless the headline).
BOOKKEEPING = ("loss", "examples_per_sec", "learning_rate")
ROW_FIELDS = ("step", "epoch", "split", "time")


def short_unit(text: str) -> str:
    """What a column header shows of a unit text: its first clause (up to ': ', '; ', ', ' or
    ' (' outside brackets), and of 'A of B', A. 'nats per image, summed over pixels (...)' ->
    'nats per image'; 'fraction of test examples classified correctly' -> 'fraction'."""
    depth = 0
    for i, char in enumerate(text):
        if depth == 0 and text.startswith((": ", "; ", ", ", " (", " of "), i):
            return text[:i].strip()
        depth += (char in "([") - (char in ")]")
    return text.strip()


@dataclasses.dataclass(frozen=True)
class Result:
    """One trained model: a run, or one vmapped member of a run."""

    run_id: int
    workdir: str
    setting: dict[str, Any]  # the swept overrides except the seed
    seed: int
    config: dict[str, Any]
    epoch: int  # the last evaluated epoch
    headline: str  # the metric the run is judged by (lower is better)
    final: dict[str, float]  # `<split>/<metric>` at `epoch`, and `eval/<part>/<name>`
    units: dict[str, str]  # column -> unit text, in the order the run declares its metrics
    rows: tuple[dict[str, Any], ...]  # the metric rows of metrics.jsonl (for curves)


def declared_units(result_dir: str, config: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(headline, {metric: unit text}) from the last `start` event of a result dir's metrics.

    Runs written before start events carried a headline get them from their family's contract,
    built from their config.json.
    """
    starts = metrics.events(os.path.join(result_dir, workdirs.METRICS_FILE), "start")
    if starts and "headline" in starts[-1]:
        return starts[-1]["headline"], dict(starts[-1].get("units", {}))
    config = ml_collections.ConfigDict(config)
    model = models.make(config, data.describe(config.data))
    return model.headline, model.term_units()


def _eval_json(path: str) -> tuple[dict[str, float], dict[str, str]]:
    """Numbers of an eval.json ({"value", "unit"} leaves) as `eval/<part>/<name>` columns;
    timings (unit "seconds") left out."""
    if not os.path.exists(path):
        return {}, {}
    tree = workdirs.read_json(path)
    values, units = {}, {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and isinstance(node.get("value"), int | float):
            if node.get("unit") != "seconds":  # timings are not results
                values[prefix], units[prefix] = float(node["value"]), node.get("unit", "")
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}")

    walk(tree, "eval")
    return values, units


def load_result(run_id: int, workdir: str, setting: Mapping[str, Any]) -> Result | None:
    """A result dir's final metrics, or None if it has no evaluation yet."""
    metrics_path = os.path.join(workdir, workdirs.METRICS_FILE)
    if not os.path.exists(metrics_path):
        return None
    config = workdirs.read_config_json(os.path.join(workdir, workdirs.CONFIG_FILE))
    eval_split = config["data"]["eval_split"]
    evaluated = metrics.latest_by_epoch(metrics_path, eval_split)
    if not evaluated:
        return None
    epoch = max(evaluated)
    headline, term_units = declared_units(workdir, config)
    order = {name: i for i, name in enumerate(dict.fromkeys([headline, *term_units]))}
    final, units = {}, {}
    train_row = metrics.latest_by_epoch(metrics_path, "train").get(epoch, {})
    for split, row in ((eval_split, evaluated[epoch]), ("train", train_row)):
        names = [k for k in row if k not in ROW_FIELDS and (k == headline or k not in BOOKKEEPING)]
        for k in sorted(names, key=lambda k: (order.get(k, len(order)), k)):
            final[f"{split}/{k}"], units[f"{split}/{k}"] = row[k], term_units.get(k, "")
    eval_values, eval_units = _eval_json(os.path.join(workdir, workdirs.EVAL_FILE))
    return Result(
        run_id=run_id,
        workdir=workdir,
        setting={k: v for k, v in setting.items() if k != SEED_KEY},
        seed=int(config["seed"]),
        config=config,
        epoch=epoch,
        headline=headline,
        final={**final, **eval_values},
        units={**units, **eval_units},
        rows=tuple(metrics.read(metrics_path)),
    )


def load_results(sweep_dir: str) -> tuple[list[Result], list[str]]:
    """(results, names of runs or members without an evaluation) of a sweep's manifest."""
    manifest = launch.read_manifest(sweep_dir)
    results, missing = [], []
    for run in manifest["runs"]:
        workdir = os.path.join(sweep_dir, run["workdir"])
        config_path = os.path.join(workdir, workdirs.CONFIG_FILE)
        if not os.path.exists(config_path):
            missing.append(run["name"])
            continue
        config = workdirs.read_config_json(config_path)
        members = sweeps.vmap_members(config.get("vmap")) or [{}]
        for member in members:
            directory = workdirs.member_workdir(workdir, member) if member else workdir
            result = load_result(run["id"], directory, {**run["overrides"], **member})
            if result is None:
                missing.append(os.path.relpath(directory, sweep_dir))
            else:
                results.append(result)
    return results, missing


# ---------------------------------------------------------------------------------------------
# Grouping seeds, and the tables
# ---------------------------------------------------------------------------------------------


def group(results: Sequence[Result]) -> list[list[Result]]:
    """Results with the same setting (seeds aside), in order of first appearance."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(json.dumps(r.setting, sort_keys=True), []).append(r)
    return list(groups.values())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; NaN for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def setting_keys(results: Sequence[Result]) -> list[str]:
    keys: dict[str, None] = {}
    for r in results:
        keys.update(dict.fromkeys(r.setting))
    return list(keys)


def metric_columns(results: Sequence[Result]) -> list[str]:
    """The evaluation split's metrics, the training headline, then eval.json's numbers; within
    each, the headline first, then in the order the runs declare their metrics."""
    chosen: set[str] = set()
    position: dict[str, int] = {}
    for r in results:
        chosen.update(c for c in r.final if not c.startswith("train/"))
        if f"train/{r.headline}" in r.final:
            chosen.add(f"train/{r.headline}")
        for c in r.units:
            position.setdefault(c, len(position))

    groups = {"train": 1, "eval": 2}  # the evaluation split's columns first (group 0)

    def rank(column: str) -> tuple[int, int, str]:
        return groups.get(column.partition("/")[0], 0), position.get(column, 0), column

    return sorted(chosen, key=rank)


@dataclasses.dataclass(frozen=True)
class Row:
    setting: dict[str, Any]
    seeds: tuple[int, ...]
    epochs: tuple[int, ...]
    stats: dict[str, tuple[float, float]]  # column -> (mean, std over seeds)


def summarize(results: Sequence[Result]) -> list[Row]:
    rows = []
    for members in group(results):
        columns = {c for r in members for c in r.final}
        stats = {
            c: mean_std([r.final[c] for r in members if c in r.final]) for c in sorted(columns)
        }
        rows.append(
            Row(
                setting=members[0].setting,
                seeds=tuple(r.seed for r in members),
                epochs=tuple(sorted({r.epoch for r in members})),
                stats=stats,
            )
        )
    return rows


def header(column: str, unit_text: str) -> str:
    """`test/neg_elbo (nats per image)`: the column with the short form of its unit."""
    unit = short_unit(unit_text)
    return f"{column} ({unit})" if unit else column


def _layout(results: Sequence[Result]) -> tuple[list[str], list[str], list[str]]:
    """(setting keys, metric columns, their headers) of a table of these results."""
    keys, columns = setting_keys(results), metric_columns(results)
    units = {c: u for r in results for c, u in r.units.items()}
    return keys, columns, [header(c, units.get(c, "")) for c in columns]


def _stats(row: Row, column: str) -> tuple[float, float]:
    return row.stats.get(column, (math.nan, math.nan))


def markdown_table(rows: Sequence[Row], results: Sequence[Result]) -> str:
    keys, columns, heads = _layout(results)
    heads = [sweeps.short_key(k) for k in keys] + ["n seeds", "epochs", *heads]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        cells = [sweeps.value_text(row.setting.get(k, "")) for k in keys]
        cells += [str(len(row.seeds)), ",".join(map(str, row.epochs))]
        for c in columns:
            mean, std = _stats(row, c)
            cells.append(
                ""
                if math.isnan(mean)
                else f"{mean:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: str, rows: Sequence[Row], results: Sequence[Result]) -> None:
    """One line per setting: mean and std columns at full precision (std empty for one seed)."""
    keys, columns, heads = _layout(results)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        # The seed values themselves, then a mean and a std column per metric.
        writer.writerow(
            [*keys, "seeds", "epochs", *(f"{h} {s}" for h in heads for s in ("mean", "std"))]
        )
        for row in rows:
            cells = [sweeps.value_text(row.setting.get(k, "")) for k in keys]
            cells += [" ".join(map(str, row.seeds)), " ".join(map(str, row.epochs))]
            for c in columns:
                cells += ["" if math.isnan(v) else repr(v) for v in _stats(row, c)]
            writer.writerow(cells)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def find_key(results: Sequence[Result], short: str) -> str | None:
    """The setting key whose short name is `short` (e.g. latent_dim -> model.latent_dim)."""
    return next((k for k in setting_keys(results) if sweeps.short_key(k) == short), None)


def _label(setting: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(
        f"{sweeps.short_key(k)}={sweeps.value_text(setting[k])}" for k in keys if k in setting
    )


def lines_by(results: Sequence[Result], x_key: str) -> dict[str, list[Result]]:
    """Results split by every setting key but x: one plot line (or figure) each."""
    others = [k for k in setting_keys(results) if k != x_key]
    lines: dict[str, list[Result]] = {}
    for r in results:
        lines.setdefault(_label(r.setting, others), []).append(r)
    return lines


def value_order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then anything else by its text."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return (0, value) if number else (1, sweeps.value_text(value))


def _headline_label(result: Result, split: str) -> str:
    """`neg_elbo (nats per image)`: the headline with the short unit of its `split` column."""
    return header(result.headline, result.units.get(f"{split}/{result.headline}", ""))


def headline_vs(results: Sequence[Result], x_key: str, path: str) -> str:
    """Each run's headline at its final epoch (mean ± std over seeds) vs the swept value x, one
    panel per setting of the other swept keys."""
    split = results[0].config["data"]["eval_split"]
    panels = []
    for label, members in lines_by(results, x_key).items():
        points: dict[Any, list[float]] = {}
        for r in members:
            value = r.final.get(f"{split}/{r.headline}")
            if value is not None:
                points.setdefault(r.setting[x_key], []).append(value)
        xs = sorted(points, key=value_order)
        stats = [mean_std(points[x]) for x in xs]
        panels.append(
            plots.Panel(
                title=label or "all runs",
                y_label=f"{split} {_headline_label(members[0], split)}",
                x=xs,
                x_text=[sweeps.value_text(x) for x in xs],
                mean=[m for m, _ in stats],
                std=[s for _, s in stats],
            )
        )
    x_name = sweeps.short_key(x_key)
    heading = f"{split} headline metric vs {x_name}\n(lower is better; mean ± std over seeds)"
    return plots.metric_vs(panels, x_name, heading, path)


def curve(result: Result, split: str, name: str) -> tuple[list[float], list[float]]:
    """(training examples seen, metric `name`) at each epoch of `split` (last row per epoch)."""
    batch_size = result.config["train"]["batch_size"]
    by_epoch = {row["epoch"]: row for row in result.rows if row["split"] == split and name in row}
    epochs = sorted(by_epoch)
    return [by_epoch[e]["step"] * batch_size for e in epochs], [by_epoch[e][name] for e in epochs]


def headline_curves(results: Sequence[Result], x_key: str, title: str, path: str) -> str:
    """The headline vs training examples seen, evaluation split and train, one line per x
    (its lowest seed)."""
    split = results[0].config["data"]["eval_split"]
    by_x: dict[Any, Result] = {}
    for r in sorted(results, key=lambda r: r.seed):
        by_x.setdefault(r.setting.get(x_key), r)
    lines = {
        f"{sweeps.short_key(x_key)}={sweeps.value_text(x)}": {
            s: curve(r, s, r.headline) for s in (split, "train")
        }
        for x, r in sorted(by_x.items(), key=lambda item: value_order(item[0]))
    }
    y_label = " / ".join(dict.fromkeys(_headline_label(r, split) for r in by_x.values()))
    heading = f"{title}: {split} and train headline metric vs training examples seen"
    return plots.training_curves(lines, "training examples seen", y_label, heading, path)


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text) or "all"


def write_report(sweep_dir: str, out_dir: str, x: str | None = None) -> list[str]:
    """Writes table.md, table.csv, `headline_vs_<x>.png` and `curves_<setting>.png` into out_dir;
    returns the paths written. `x`, the short name of a key the sweep varies, is the figures' x
    axis; None: latent_dim where the sweep varies it, else no figures."""
    results, missing = load_results(sweep_dir)
    if not results:
        raise ValueError(f"No run in {sweep_dir} has evaluated metrics yet.")
    x_key = find_key(results, x or "latent_dim")
    if x is not None and x_key is None:
        varied = ", ".join(sweeps.short_key(k) for k in setting_keys(results)) or "nothing"
        raise ValueError(f"--x={x}: not a key this sweep varies (it varies {varied}).")
    os.makedirs(out_dir, exist_ok=True)
    rows = summarize(results)
    md = markdown_table(rows, results)
    if missing:
        md += f"\nNo evaluation yet: {', '.join(missing)}\n"
    paths = [os.path.join(out_dir, "table.md"), os.path.join(out_dir, "table.csv")]
    with open(paths[0], "w") as f:
        f.write(md)
    write_csv(paths[1], rows, results)
    if x_key is not None:
        name = f"headline_vs_{sweeps.short_key(x_key)}.png"
        paths.append(headline_vs(results, x_key, os.path.join(out_dir, name)))
        for label, members in lines_by(results, x_key).items():
            name = os.path.join(out_dir, f"curves_{_file_part(label)}.png")
            paths.append(headline_curves(members, x_key, label or "all runs", name))
    return paths
