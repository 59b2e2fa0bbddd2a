"""Tables and plots of a sweep, from what its runs wrote (config.json, metrics.jsonl, eval.json).

  python -m experiments.report --sweep_dir=runs/s1 [--out=runs/s1/report] [--x=latent_dim]

Writes to --out (default <sweep_dir>/report):
  table.md, table.csv   final metrics per setting: mean ± std (ddof=1) over seeds (an outer `seed`
                        axis or vmapped seed members), with units in the column headers
  <bound>_vs_<x>.png    the evaluation bound vs --x (e.g. latent dimension), one line per setting
                        of the other swept keys (e.g. likelihood)
  curves_<...>.png      training curves as in Kingma & Welling's Figure 2: the bound vs training
                        examples seen (log x), test solid and train dashed, one line per --x value

"Final" is each run's last evaluated epoch (the table's `epochs` column says which); a run with no
evaluation yet is listed as missing.
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

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster or in tests
from absl import app, flags  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autoencoders import metrics, sweeps  # noqa: E402
from experiments import cli  # noqa: E402

# The quantity plotted and compared: the first of these a run logs (a VAE's bound is neg_elbo, or
# xent_plus_kl for a Bernoulli on grey levels; a deterministic AE has only its reconstruction term).
BOUNDS = ("neg_elbo", "xent_plus_kl", "recon_nll", "recon_xent", "loss")
_NOT_IN_TABLE = ("loss", "examples_per_sec", "learning_rate")  # bookkeeping, not results
SEED_KEY = "seed"


def unit(name: str, text: str = "") -> str:
    """A short unit for a metric name (or an eval.json unit text): what the column header shows."""
    text = (text or name).lower()
    if "squared error" in text or "sq_err" in text:
        return "sq. error per image"
    if "nats" in text or any(s in text for s in ("elbo", "nll", "xent", "kl", "bound")):
        return "nats per image"
    if "fraction" in text:
        return "fraction"
    return ""


@dataclasses.dataclass(frozen=True)
class Result:
    """One trained model: a run, or one vmapped member of a run."""

    run_id: int
    workdir: str
    setting: dict[str, Any]  # the swept overrides except the seed
    seed: int
    config: dict[str, Any]
    epoch: int  # the last evaluated epoch
    final: dict[str, float]  # `<split>/<metric>` at `epoch`, and `eval/<part>/<name>`
    units: dict[str, str]  # column -> unit
    rows: tuple[dict[str, Any], ...]  # the metric rows of metrics.jsonl (for curves)


def _eval_json(path: str) -> tuple[dict[str, float], dict[str, str]]:
    """Numbers of an eval.json ({"value", "unit"} leaves) as `eval/<part>/<name>` columns."""
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        tree = json.load(f)
    values, units = {}, {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and isinstance(node.get("value"), int | float):
            if node.get("unit") != "seconds":  # timings are not results
                values[prefix], units[prefix] = float(node["value"]), unit("", node.get("unit"))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}")

    for part in ("density", "reduction", "manifold", "representation"):
        walk(tree.get(part), f"eval/{part}")
    return values, units


def load_result(run_id: int, workdir: str, setting: Mapping[str, Any]) -> Result | None:
    """A result dir's final metrics, or None if it has no evaluation yet."""
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(metrics_path):
        return None
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    eval_split = config["data"]["eval_split"]
    evaluated = metrics.latest_by_epoch(metrics_path, eval_split)
    if not evaluated:
        return None
    epoch = max(evaluated)
    final, units = {}, {}
    for split, row in ((eval_split, evaluated[epoch]), ("train", _train_row(metrics_path, epoch))):
        for k, v in row.items():
            if k not in ("step", "epoch", "split", "time", *_NOT_IN_TABLE):
                final[f"{split}/{k}"], units[f"{split}/{k}"] = v, unit(k)
    eval_values, eval_units = _eval_json(os.path.join(workdir, "eval.json"))
    return Result(
        run_id=run_id,
        workdir=workdir,
        setting={k: v for k, v in setting.items() if k != SEED_KEY},
        seed=int(config["seed"]),
        config=config,
        epoch=epoch,
        final={**final, **eval_values},
        units={**units, **eval_units},
        rows=tuple(metrics.read(metrics_path)),
    )


def _train_row(metrics_path: str, epoch: int) -> dict[str, Any]:
    return metrics.latest_by_epoch(metrics_path, "train").get(epoch, {})


def load_results(sweep_dir: str) -> tuple[list[Result], list[str]]:
    """(results, names of runs or members without an evaluation) of a sweep's manifest."""
    manifest = sweeps.read_manifest(sweep_dir)
    results, missing = [], []
    for run in manifest["runs"]:
        workdir = os.path.join(sweep_dir, run["workdir"])
        config_path = os.path.join(workdir, "config.json")
        if not os.path.exists(config_path):
            missing.append(run["name"])
            continue
        with open(config_path) as f:
            config = json.load(f)
        members = sweeps.vmap_members(config.get("vmap")) or [{}]
        for member in members:
            directory = sweeps.member_workdir(workdir, member) if member else workdir
            result = load_result(run["id"], directory, {**run["overrides"], **member})
            if result is None:
                missing.append(os.path.relpath(directory, sweep_dir))
            else:
                results.append(result)
    return results, missing


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------


def _key(setting: Mapping[str, Any]) -> str:
    return json.dumps(setting, sort_keys=True)


def group(results: Sequence[Result]) -> list[list[Result]]:
    """Results with the same setting (seeds aside), in order of first appearance."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(_key(r.setting), []).append(r)
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


# Column order within a split: the bound, its two terms, then the rest (alphabetically).
_ORDER = ("neg_elbo", "xent_plus_kl", "recon_nll", "recon_xent", "kl", "sq_err")


def metric_columns(results: Sequence[Result]) -> list[str]:
    """The evaluation split's metrics, the training bound, then eval.json's numbers."""
    seen: set[str] = set()
    for r in results:
        seen.update(c for c in r.final if not c.startswith("train/"))
        bound = bound_name([c.removeprefix("train/") for c in r.final if c.startswith("train/")])
        if bound:
            seen.add(f"train/{bound}")

    def rank(column: str) -> tuple[int, int, str]:
        split, _, name = column.partition("/")
        group = 2 if split == "eval" else 1 if split == "train" else 0
        return group, _ORDER.index(name) if name in _ORDER else len(_ORDER), column

    return sorted(seen, key=rank)


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


def header(column: str, units: Mapping[str, str]) -> str:
    return f"{column} ({units[column]})" if units.get(column) else column


def _text(value: Any) -> str:
    return sweeps.value_text(value) if not isinstance(value, str) else value


def markdown_table(rows: Sequence[Row], results: Sequence[Result]) -> str:
    keys, columns = setting_keys(results), metric_columns(results)
    units = {c: u for r in results for c, u in r.units.items()}
    heads = [sweeps.short_key(k) for k in keys] + ["n seeds", "epochs"]
    heads += [header(c, units) for c in columns]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        cells = [_text(row.setting.get(k, "")) for k in keys]
        cells += [str(len(row.seeds)), ",".join(map(str, row.epochs))]
        for c in columns:
            mean, std = row.stats.get(c, (math.nan, math.nan))
            cells.append(
                ""
                if math.isnan(mean)
                else f"{mean:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: str, rows: Sequence[Row], results: Sequence[Result]) -> None:
    """One line per setting: mean and std columns at full precision (std empty for one seed)."""
    keys, columns = setting_keys(results), metric_columns(results)
    units = {c: u for r in results for c, u in r.units.items()}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        heads = [*keys, "seeds", "epochs"]  # the seed values themselves
        for c in columns:
            heads += [f"{header(c, units)} mean", f"{header(c, units)} std"]
        writer.writerow(heads)
        for row in rows:
            cells = [_text(row.setting.get(k, "")) for k in keys]
            cells += [" ".join(map(str, row.seeds)), " ".join(map(str, row.epochs))]
            for c in columns:
                mean, std = row.stats.get(c, (math.nan, math.nan))
                cells += ["" if math.isnan(v) else repr(v) for v in (mean, std)]
            writer.writerow(cells)


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------


def bound_name(names: Sequence[str]) -> str | None:
    """The bound a run logs (see BOUNDS), from its metric names without split."""
    return next((b for b in BOUNDS if b in names), None)


def find_key(results: Sequence[Result], short: str) -> str | None:
    """The setting key whose short name is `short` (e.g. latent_dim -> model.latent_dim)."""
    return next((k for k in setting_keys(results) if sweeps.short_key(k) == short), None)


def _label(setting: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{sweeps.short_key(k)}={_text(setting[k])}" for k in keys if k in setting)


def _lines_by(results: Sequence[Result], x_key: str) -> dict[str, list[Result]]:
    """Results split by every setting key but x: one plot line (or figure) each."""
    others = [k for k in setting_keys(results) if k != x_key]
    lines: dict[str, list[Result]] = {}
    for r in results:
        lines.setdefault(_label(r.setting, others), []).append(r)
    return lines


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values)


def _order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then anything else by its text."""
    return (0, value) if _numeric([value]) else (1, str(value))


def plot_vs(results: Sequence[Result], x_key: str, path: str) -> str:
    """The evaluation bound (mean ± std over seeds) vs x: one panel and line per other setting.

    Panels, not one shared axis: different likelihoods bound different data (binarized, grey,
    dequantized), so their numbers share no scale.
    """
    lines = _lines_by(results, x_key)
    fig = Figure(figsize=(4 * len(lines), 3.8))
    split = results[0].config["data"]["eval_split"]
    for i, (label, members) in enumerate(lines.items()):
        ax = fig.add_subplot(1, len(lines), i + 1)
        bound = bound_name([c.split("/", 1)[1] for c in members[0].final if c.startswith(split)])
        points: dict[Any, list[float]] = {}
        for r in members:
            points.setdefault(r.setting[x_key], []).append(r.final[f"{split}/{bound}"])
        xs = sorted(points, key=_order)
        stats = [mean_std(points[x]) for x in xs]
        positions = xs if _numeric(xs) else list(range(len(xs)))
        ax.errorbar(
            positions,
            [m for m, _ in stats],
            yerr=[0.0 if math.isnan(s) else s for _, s in stats],
            marker="o",
            capsize=3,
        )
        if _numeric(xs):
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(positions, [_text(x) for x in xs])
        ax.set_xlabel(sweeps.short_key(x_key))
        ax.set_ylabel(f"{split} {bound}, nats per image")
        ax.set_title(label or "all runs", fontsize=9)
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        f"{split} bound (lower is better) vs {sweeps.short_key(x_key)}; mean ± std over seeds"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def curve(result: Result, split: str, bound: str) -> tuple[list[float], list[float]]:
    """(training examples seen, bound) at each epoch of `split` (the last row per epoch)."""
    batch_size = result.config["train"]["batch_size"]
    by_epoch = {row["epoch"]: row for row in result.rows if row["split"] == split and bound in row}
    epochs = sorted(by_epoch)
    return [by_epoch[e]["step"] * batch_size for e in epochs], [by_epoch[e][bound] for e in epochs]


def plot_curves(results: Sequence[Result], x_key: str, title: str, path: str) -> str:
    """Kingma & Welling's Figure 2: bound vs training examples seen, one line per x (seed 0s)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    split = results[0].config["data"]["eval_split"]
    by_x: dict[Any, Result] = {}
    for r in sorted(results, key=lambda r: r.seed):
        by_x.setdefault(r.setting.get(x_key), r)  # the lowest seed of each x
    colors = matplotlib.colormaps["viridis"]
    for i, (x, r) in enumerate(sorted(by_x.items(), key=lambda item: _order(item[0]))):
        bound = bound_name(list(r.rows[-1]))
        color = colors(i / max(1, len(by_x) - 1))
        for s, style in ((split, "-"), ("train", "--")):
            examples, values = curve(r, s, bound)
            label = f"{sweeps.short_key(x_key)}={_text(x)}" if s == split else None
            ax.plot(examples, values, style, color=color, marker="o", markersize=3, label=label)
    for s, style in ((split, "-"), ("train", "--")):  # legend entries for the two line styles
        ax.plot([], [], style, color="black", label=s)
    ax.set_xscale("log")
    ax.set_xlabel("training examples seen")
    ax.set_ylabel("bound, nats per image (lower is better)")
    ax.set_title(f"{title}: {split} and train bound vs training examples seen", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text) or "all"


def write_report(sweep_dir: str, out_dir: str, x: str = "latent_dim") -> list[str]:
    """Writes the table and the plots; returns the paths written."""
    results, missing = load_results(sweep_dir)
    if not results:
        raise ValueError(f"No run in {sweep_dir} has evaluated metrics yet.")
    os.makedirs(out_dir, exist_ok=True)
    rows = summarize(results)
    md = markdown_table(rows, results)
    if missing:
        md += f"\nNo evaluation yet: {', '.join(missing)}\n"
    paths = [os.path.join(out_dir, "table.md"), os.path.join(out_dir, "table.csv")]
    with open(paths[0], "w") as f:
        f.write(md)
    write_csv(paths[1], rows, results)
    x_key = find_key(results, x)
    if x_key is not None:
        paths.append(plot_vs(results, x_key, os.path.join(out_dir, f"bound_vs_{x}.png")))
        for label, members in _lines_by(results, x_key).items():
            name = os.path.join(out_dir, f"curves_{_file_part(label)}.png")
            paths.append(plot_curves(members, x_key, label or "all runs", name))
    return paths


_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "The sweep's directory (with manifest.json).")
_OUT = flags.DEFINE_string("out", "", "Where to write the report (default <sweep_dir>/report).")
_X = flags.DEFINE_string("x", "latent_dim", "The swept key (short name) on the plots' x axis.")
flags.mark_flags_as_required(["sweep_dir"])


def main(argv: list[str]) -> None:
    del argv
    out = _OUT.value or os.path.join(_SWEEP_DIR.value, "report")
    with cli.user_errors(ValueError, FileNotFoundError):
        paths = write_report(_SWEEP_DIR.value, out, _X.value)
    with open(paths[0]) as f:
        print(f.read())
    print("\n".join(paths))


if __name__ == "__main__":
    app.run(main)
