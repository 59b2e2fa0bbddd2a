"""Sweeps: declaration and expansion (sweeps.py), the local launcher (launch.py: parallel, skip,
resume, failures, Ctrl-C), vmapped members, and the report's numbers and units (results.py)."""

from __future__ import annotations

import ast
import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import ml_collections
import numpy as np
import pytest

from autoencoders import launch, metrics, results, sweeps, training
from autoencoders import workdir as workdirs
from tests.helpers import REPO, tiny_config

# ---------------------------------------------------------------------------------------------
# Declaring and expanding
# ---------------------------------------------------------------------------------------------


def test_combinators_order_and_merging():
    latent = sweeps.axis("model.latent_dim", [2, 5])
    lik = sweeps.arg("likelihood", ["bernoulli", "gaussian_learned"])
    assert sweeps.product(latent, lik) == (
        {"model.latent_dim": 2, "arg:likelihood": "bernoulli"},
        {"model.latent_dim": 2, "arg:likelihood": "gaussian_learned"},
        {"model.latent_dim": 5, "arg:likelihood": "bernoulli"},
        {"model.latent_dim": 5, "arg:likelihood": "gaussian_learned"},
    )
    assert sweeps.zip(latent, lik) == (
        {"model.latent_dim": 2, "arg:likelihood": "bernoulli"},
        {"model.latent_dim": 5, "arg:likelihood": "gaussian_learned"},
    )
    assert sweeps.chain(latent, sweeps.point({"seed": 3})) == (
        {"model.latent_dim": 2},
        {"model.latent_dim": 5},
        {"seed": 3},
    )
    with pytest.raises(ValueError, match="twice"):
        sweeps.product(latent, sweeps.axis("model.latent_dim", [3]))
    with pytest.raises(ValueError, match="unequal"):
        sweeps.zip(latent, sweeps.axis("seed", [0]))


def test_sweeps_module_imports_nothing_that_spawns_processes_or_parses_flags():
    """Config files import sweeps.py; launching lives in launch.py (nor may sweeps.py import the
    package's other modules: workdir.py imports it)."""
    tree = ast.parse(pathlib.Path(sweeps.__file__).read_text())
    roots = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not roots & {"subprocess", "signal", "multiprocessing", "absl", "ml_collections"}
    assert "autoencoders" not in roots


def _plan(runs, sweep_dir="/s", fixed=None, config_arg="data=digits", global_flags=()):
    return sweeps.expand(
        sweeps.declare(runs, fixed),
        sweep="t",
        config_file="configs/vae.py",
        config_arg=config_arg,
        sweep_dir=sweep_dir,
        global_flags=global_flags,
    )


def test_ids_are_positions_and_names_come_from_overrides_alone():
    a = sweeps.axis("model.latent_dim", [2, 5])
    b = sweeps.arg("likelihood", ["bernoulli", "continuous_bernoulli"])
    plan = _plan(sweeps.product(a, b))
    assert [r.id for r in plan.runs] == [0, 1, 2, 3]
    assert [r.name for r in plan.runs] == [
        "latent_dim=2,likelihood=bernoulli",
        "latent_dim=2,likelihood=continuous_bernoulli",
        "latent_dim=5,likelihood=bernoulli",
        "latent_dim=5,likelihood=continuous_bernoulli",
    ]
    assert _plan(sweeps.product(a, b)) == plan  # stable across calls
    # Reordering the axes renumbers runs (ids follow the documented order) but keeps workdirs;
    # extending an axis keeps the workdirs of the runs that were there.
    swapped = _plan(sweeps.product(b, a))
    assert {r.name: r.workdir for r in swapped.runs} == {r.name: r.workdir for r in plan.runs}
    assert [r.name for r in swapped.runs][:2] == [plan.runs[0].name, plan.runs[2].name]
    extended = _plan(sweeps.product(sweeps.axis("model.latent_dim", [2, 5, 10]), b))
    assert {r.workdir for r in plan.runs} < {r.workdir for r in extended.runs}
    # Names are filesystem-safe; a sweep whose runs would share a workdir is refused.
    assert (
        sweeps.run_name({"network.hidden": (64, 32), "model.beta": 0.5}) == "beta=0.5,hidden=64x32"
    )
    assert sweeps.run_name({"encoder.width": 1, "decoder.width": 2}) == (
        "decoder.width=2,encoder.width=1"
    )
    with pytest.raises(ValueError, match="same overrides"):
        _plan(sweeps.chain(a, a))


def test_overrides_reach_the_config_as_the_training_command_builds_it():
    runs = sweeps.product(
        sweeps.axis("model.latent_dim", [3]), sweeps.arg("likelihood", ["gaussian_learned"])
    )
    fixed = {"network.hidden": (16,), "train.num_epochs": 7, "arg:net": "mlp"}
    plan = _plan(runs, fixed=fixed, global_flags=["--config.train.num_epochs=2"])
    (run,) = plan.runs
    config = launch.resolve_config(run.argv)
    assert config.model.latent_dim == 3
    assert config.data.name == "digits"
    # The preset sets several fields: likelihood and preprocessing.
    assert config.likelihood.name == "gaussian" and config.likelihood.learn_sigma
    assert config.data.dequantize and config.data.binarization == "none"
    assert tuple(config.network.hidden) == (16,)
    # The command line wins over the sweep's fixed settings ...
    assert config.train.num_epochs == 2
    assert plan.fixed == {"network.hidden": (16,), "arg:net": "mlp"}
    # ... but cannot override what the sweep varies.
    with pytest.raises(ValueError, match="varies"):
        _plan(runs, global_flags=["--config.model.latent_dim=4"])
    with pytest.raises(ValueError, match="varies"):
        _plan(runs, config_arg="data=digits,likelihood=bernoulli")
    with pytest.raises(ValueError, match="sweep=NAME"):
        sweeps.parse_config_spec("configs/vae.py:latent=2")
    assert sweeps.parse_config_spec("configs/vae.py:data=digits,sweep=s1") == (
        "configs/vae.py",
        "s1",
        "data=digits",
    )


def test_manifest_records_every_run(tmp_path):
    plan = _plan(
        sweeps.product(sweeps.axis("model.latent_dim", [2, 5]), sweeps.axis("seed", [0, 1])),
        sweep_dir=str(tmp_path),
        global_flags=["--config.train.num_epochs=1"],
    )
    launch.write_manifest(plan)
    manifest = launch.read_manifest(str(tmp_path))
    assert manifest["sweep"] == "t" and manifest["config_file"] == "configs/vae.py"
    assert manifest["global_flags"] == ["--config.train.num_epochs=1"]
    assert [r["id"] for r in manifest["runs"]] == [0, 1, 2, 3]
    for entry, run in zip(manifest["runs"], plan.runs, strict=True):
        assert entry["name"] == run.name and entry["workdir"] == run.name
        assert entry["overrides"] == run.overrides
        assert entry["command"] == list(run.argv[1:])


def test_shipped_sweeps_expand_to_valid_configs():
    expected = {
        "latent_x_likelihood": (15, "mnist"),
        "kingma_welling_fig2": (5, "mnist"),
        "kingma_welling_frey": (4, "frey_face"),
    }
    for name, (count, dataset) in expected.items():
        plan = sweeps.plan_from_command(f"configs/vae.py:sweep={name}", "/s")
        assert len(plan.runs) == count
        configs = [launch.resolve_config(r.argv) for r in plan.runs]
        assert {c.data.name for c in configs} == {dataset}
    lxl = sweeps.plan_from_command("configs/vae.py:sweep=latent_x_likelihood", "/s")
    kinds = {
        (c.likelihood.name, c.likelihood.learn_sigma, c.data.binarization, c.data.dequantize)
        for c in map(launch.resolve_config, (r.argv for r in lxl.runs))
    }
    assert kinds == {
        ("bernoulli", False, "dynamic", False),
        ("continuous_bernoulli", False, "none", False),
        ("gaussian", True, "none", True),
    }
    kw = sweeps.plan_from_command("configs/vae.py:sweep=kingma_welling_fig2", "/s")
    c = launch.resolve_config(kw.runs[-1].argv)
    assert (c.model.latent_dim, tuple(c.network.hidden), c.network.activation) == (
        200,
        (500,),
        "tanh",
    )
    assert (c.optimizer.name, c.train.batch_size) == ("adagrad", 100)
    frey = sweeps.plan_from_command("configs/vae.py:sweep=kingma_welling_frey", "/s")
    c = launch.resolve_config(frey.runs[0].argv)
    assert (c.model.latent_dim, tuple(c.network.hidden), c.train.batch_size) == (2, (200,), 100)
    assert (c.likelihood.name, c.likelihood.learn_sigma, c.data.dequantize) == (
        "gaussian",
        True,
        True,
    )


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------


class RecordingBackend:
    """Runs nothing: records what it was given and reports success."""

    def __init__(self):
        self.given: list[sweeps.Run] = []

    def run(self, runs):
        self.given.extend(runs)
        return [launch.Outcome(r, 0, 0.0, "") for r in runs]


def test_launch_reports_a_run_config_flags_reject_without_starting_it(tmp_path):
    plan = _plan(
        sweeps.chain(
            sweeps.axis("model.latent_dim", [2]), sweeps.point({"model.no_such_field": 1})
        ),
        sweep_dir=str(tmp_path),
    )
    backend = RecordingBackend()
    summary = launch.launch(plan, backend)
    assert [r.id for r in backend.given] == [0]
    (failed,) = summary.failed
    assert failed.run.id == 1
    assert "no_such_field" in launch.log_tail(failed.log_path)


def test_ctrl_c_stops_children_by_pid_and_lets_them_clean_up(tmp_path):
    """SIGINT reaches each child (its finally-blocks run); the launcher re-raises."""
    script = textwrap.dedent(
        """
        import sys, time
        open(sys.argv[1] + ".started", "w").close()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            open(sys.argv[1] + ".cleaned", "w").close()
        """
    )
    runs = [
        sweeps.Run(
            i,
            f"r{i}",
            {},
            str(tmp_path / f"r{i}"),
            (sys.executable, "-c", script, str(tmp_path / f"r{i}")),
        )
        for i in range(2)
    ]
    backend = launch.LocalBackend(workers=2, grace_seconds=10)
    deadline = time.monotonic() + 30

    def ctrl_c_once_both_started(signum, frame):
        if all((tmp_path / f"r{i}.started").exists() for i in range(2)):
            raise KeyboardInterrupt
        if time.monotonic() < deadline:
            signal.setitimer(signal.ITIMER_REAL, 0.2)

    previous = signal.signal(signal.SIGALRM, ctrl_c_once_both_started)
    # A launcher CLI handles SIGINT (`interrupts.install`), so its children start with SIGINT's
    # default action even where the launcher was started with it ignored (`nohup ... &`): as here.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            backend.run(runs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGINT, previous_int)
    for i in range(2):
        assert (tmp_path / f"r{i}.cleaned").exists()


TINY_SWEEP = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    good = sweeps.product(
        sweeps.axis("model.latent_dim", [2, 3]),
        sweeps.arg("likelihood", ["bernoulli", "continuous_bernoulli"]),
    )
    # Three good runs and one whose override training rejects.
    bad = sweeps.point({"model.latent_dim": 0, "arg:likelihood": "bernoulli"})
    return sweeps.chain(good[:3], bad)
"""


def _sweep_command(config_file, sweep_dir, *extra):
    return [
        sys.executable,
        "-m",
        "experiments.sweep",
        f"--config={config_file}:sweep=tiny,data=digits",
        f"--sweep_dir={sweep_dir}",
        "--workers=2",
        "--config.network.hidden=(16,)",
        "--config.train.num_epochs=2",
        *extra,
    ]


def test_sweep_runs_in_parallel_survives_a_failure_skips_finished_runs_and_reports(tmp_path):
    config_file = tmp_path / "tiny_sweep.py"
    config_file.write_text(TINY_SWEEP)
    sweep_dir = tmp_path / "sweep"
    command = _sweep_command(config_file, sweep_dir)
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stdout + first.stderr
    # The failure is reported at the end with the tail of its log.
    assert "1 failed" in first.stdout
    assert "config.model.latent_dim=0: must be > 0" in first.stdout.split("failed (exit")[-1]

    plan = sweeps.plan_from_command(
        f"{config_file}:sweep=tiny,data=digits",
        str(sweep_dir),
        ["--config.network.hidden=(16,)", "--config.train.num_epochs=2"],
    )
    good, bad = plan.runs[:3], plan.runs[3]
    assert [launch.status(r) for r in good] == ["finished"] * 3
    sizes = {r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl")) for r in good}

    # Re-running skips the finished runs (their metrics do not grow) and retries the failed one.
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 1
    assert "3 finished earlier, 0 finished now, 1 failed" in second.stdout
    assert f"[{bad.id}] started" in second.stdout
    assert all(f"[{r.id}] started" not in second.stdout for r in good)
    assert sizes == {
        r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl")) for r in good
    }

    # The report's numbers are the runs' own final metrics, judged by the headline and units their
    # start events declare.
    for run in good:
        (start, *_) = metrics.events(os.path.join(run.workdir, "metrics.jsonl"), "start")
        assert start["headline"] == "neg_elbo" and "kl" in start["units"]
    paths = results.write_report(str(sweep_dir), str(tmp_path / "report"))
    assert {pathlib.Path(p).name for p in paths} >= {
        "table.md",
        "table.csv",
        "headline_vs_latent_dim.png",
        "curves_likelihood=bernoulli.png",
    }
    with open(tmp_path / "report" / "table.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3
    for run in good:
        test_row = metrics.latest_by_epoch(os.path.join(run.workdir, "metrics.jsonl"), "test")[2]
        (line,) = [
            t
            for t in table
            if t["model.latent_dim"] == str(run.overrides["model.latent_dim"])
            and t["arg:likelihood"] == run.overrides["arg:likelihood"]
        ]
        assert float(line["test/neg_elbo (nats per image) mean"]) == test_row["neg_elbo"]
        assert float(line["test/kl (nats per image) mean"]) == test_row["kl"]
        assert line["test/neg_elbo (nats per image) std"] == ""  # one seed
    assert "latent_dim=0,likelihood=bernoulli" in (tmp_path / "report" / "table.md").read_text()


# What training writes into every (re)start event: the headline and the unit of every metric.
START = {
    "headline": "neg_elbo",
    "units": {
        "loss": "nats per image: reconstruction + β·KL",
        "neg_elbo": "nats per image, summed over pixels (Bernoulli log-likelihood) (one z sample)",
        "kl": "nats per image: KL(q(z|x) || p(z))",
        "examples_per_sec": "training examples per second",
    },
}


SEEDS = sweeps.axis("seed", [0, 1])


def _write_runs(sweep_dir, start_event, eval_json=None, runs=SEEDS):
    """Runs with hand-written final metrics: test neg_elbo 40 + 4·seed + latent_dim."""
    plan = _plan(runs, sweep_dir=str(sweep_dir))
    launch.write_manifest(plan)
    for run in plan.runs:
        os.makedirs(run.workdir)
        with open(os.path.join(run.workdir, workdirs.CONFIG_FILE), "w") as f:
            json.dump(workdirs.config_json(launch.resolve_config(run.argv)), f)
        value = 40.0 + 4 * run.overrides["seed"] + run.overrides.get("model.latent_dim", 0)
        log = metrics.MetricsLog(run.workdir)
        log.event("start", resumed_from_epoch=0, **start_event)
        log.write(
            step=10,
            epoch=1,
            split="train",
            values={"loss": value + 1, "kl": 3.0, "neg_elbo": value + 1, "examples_per_sec": 9.0},
        )
        log.write(step=10, epoch=1, split="test", values={"kl": 2.0, "neg_elbo": value})
        log.close()
        if eval_json:
            with open(os.path.join(run.workdir, workdirs.EVAL_FILE), "w") as f:
                json.dump(eval_json, f)
    return plan


def test_report_means_and_stds_over_seeds_with_the_units_runs_declare(tmp_path):
    """Two seeds of one setting become one row: mean and sample std of their final metrics;
    headers carry the short form of the units in the runs' start events and eval.json."""
    eval_json = {
        "density": {"nll": {"value": 39.5, "unit": "nats per image, summed; IWAE estimate"}},
        "representation": {"knn": {"value": 0.9, "unit": "fraction of test examples correct"}},
        "timings": {"density": {"value": 3.0, "unit": "seconds"}},
    }
    _write_runs(tmp_path, START, eval_json)
    loaded, missing = results.load_results(str(tmp_path))
    assert not missing and {r.headline for r in loaded} == {"neg_elbo"}
    (row,) = results.summarize(loaded)
    assert row.seeds == (0, 1)
    mean, std = row.stats["test/neg_elbo"]
    assert mean == 42.0 and std == pytest.approx(2.0**1.5)
    # The headline first, then the declared order; the training headline; eval.json's numbers.
    # Bookkeeping (loss, examples/s) and timings are left out.
    assert results.metric_columns(loaded) == [
        "test/neg_elbo",
        "test/kl",
        "train/neg_elbo",
        "eval/density/nll",
        "eval/representation/knn",
    ]
    md = results.markdown_table([row], loaded)
    assert "42.00 ± 2.83" in md
    for head in (
        "test/neg_elbo (nats per image)",
        "test/kl (nats per image)",
        "eval/density/nll (nats per image)",
        "eval/representation/knn (fraction)",
    ):
        assert head in md, head


def test_report_units_of_runs_written_before_start_events_named_them(tmp_path):
    """Old runs' start events carry only {"recon", "sq_err"} units and no headline: the report
    takes both from the family contract of the run's config.json."""
    old_start = {"units": {"recon": "nats per image, summed over pixels", "sq_err": "squared"}}
    plan = _write_runs(tmp_path, old_start)
    start = metrics.events(os.path.join(plan.runs[0].workdir, workdirs.METRICS_FILE), "start")
    assert len(start) == 1 and "headline" not in start[0]
    loaded, _ = results.load_results(str(tmp_path))
    assert {r.headline for r in loaded} == {"neg_elbo"}
    assert loaded[0].units["test/kl"].startswith("nats per image")
    assert results.metric_columns(loaded)[0] == "test/neg_elbo"
    md = results.markdown_table(results.summarize(loaded), loaded)
    assert "test/neg_elbo (nats per image)" in md and "test/kl (nats per image)" in md


def test_report_figures(tmp_path):
    runs = sweeps.product(sweeps.axis("model.latent_dim", [2, 5]), sweeps.axis("seed", [0, 1]))
    _write_runs(tmp_path / "sweep", START, runs=runs)
    paths = results.write_report(str(tmp_path / "sweep"), str(tmp_path / "report"))
    assert [pathlib.Path(p).name for p in paths] == [
        "table.md",
        "table.csv",
        "headline_vs_latent_dim.png",
        "curves_all.png",
    ]
    assert all(os.path.getsize(p) > 0 for p in paths)
    loaded, _ = results.load_results(str(tmp_path / "sweep"))
    batch_size = loaded[0].config["train"]["batch_size"]  # latent_dim=2, seed 0: 40 + 2
    assert results.curve(loaded[0], "test", "neg_elbo") == ([10 * batch_size], [42.0])


def test_short_units_come_from_the_unit_text():
    assert results.short_unit("nats per image, summed over pixels (Gaussian density)") == (
        "nats per image"
    )
    assert results.short_unit("squared error per image: (x − x̂)² summed") == (
        "squared error per image"
    )
    assert results.short_unit("% of images misclassified by argmax q(y|x)") == "%"
    assert results.short_unit("in [0, 1], 10 neighbours; 1 = preserved") == "in [0, 1]"
    assert results.short_unit("E‖h(x) − h(x + ε)‖² per image (code units²)") == (
        "E‖h(x) − h(x + ε)‖² per image"
    )
    assert results.short_unit("") == ""


# ---------------------------------------------------------------------------------------------
# Vectorised members
# ---------------------------------------------------------------------------------------------

VMAP = {"seed": (0, 1), "learning_rate": (1e-3, 3e-3), "beta": (0.5, 1.0)}


def test_vmapped_members_equal_separate_runs_and_report_over_seeds(tmp_path):
    fixed = {
        "network.hidden": (16,),
        "train.num_epochs": 2,
        "checkpoint.every_epochs": 1,
        "vmap": VMAP,
    }
    plan = _plan(sweeps.point({}), fixed=fixed, sweep_dir=str(tmp_path / "sweep"))
    (run,) = plan.runs
    config = launch.resolve_config(run.argv)  # through the --config.vmap flag, as a sweep does
    final = training.train_and_evaluate(config, run.workdir)
    assert launch.status(run) == "finished"
    members = workdirs.result_dirs(workdirs.config_json(config), run.workdir)
    assert len(members) == 8 and all(os.path.isdir(d) for d in members)

    for seed, lr, beta in [(1, 3e-3, 0.5), (0, 1e-3, 1.0)]:
        name = f"beta={beta},learning_rate={lr},seed={seed}"
        member_dir = os.path.join(run.workdir, "members", name)
        separate_argv = train_argv_for(
            [
                "--config.network.hidden=(16,)",
                "--config.train.num_epochs=2",
                "--config.checkpoint.every_epochs=1",
                f"--config.seed={seed}",
                f"--config.optimizer.learning_rate={lr}",
                f"--config.model.beta={beta}",
            ]
        )
        separate = launch.resolve_config(separate_argv)
        with open(os.path.join(member_dir, "config.json")) as f:
            assert json.load(f) == workdirs.config_json(separate)  # the member is that run
        separate_final = training.train_and_evaluate(separate, str(tmp_path / name))
        *_, member_params, _ = workdirs.restore_params(member_dir)
        *_, separate_params, _ = workdirs.restore_params(str(tmp_path / name))
        for a, b in zip(
            jax.tree.leaves(member_params), jax.tree.leaves(separate_params), strict=True
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        for key in ("test/neg_elbo", "test/kl", "train/loss", "train/learning_rate"):
            assert final[f"{name}/{key}"] == pytest.approx(separate_final[key], rel=1e-5), key

    # Killed after epoch 1: the members resume together and end where the whole run ended.
    cut = tmp_path / "cut"
    shutil.copytree(run.workdir, cut)
    for member_dir in workdirs.result_dirs(workdirs.config_json(config), str(cut)):
        shutil.rmtree(os.path.join(member_dir, "checkpoints", "2"))
    resumed = training.train_and_evaluate(config, str(cut))
    for key, value in final.items():
        if "examples_per_sec" not in key:
            assert resumed[key] == value, key

    # The report averages the seed members of each (learning rate, β) setting.
    launch.write_manifest(plan)
    loaded, missing = results.load_results(plan.sweep_dir)
    assert not missing and len(loaded) == 8
    rows = results.summarize(loaded)
    assert len(rows) == 4 and all(row.seeds == (0, 1) for row in rows)
    for row in rows:
        values = [
            metrics.latest_by_epoch(os.path.join(d, "metrics.jsonl"), "test")[2]["neg_elbo"]
            for d in members
            if all(f"{k}={v}" in d for k, v in row.setting.items())
        ]
        assert len(values) == 2
        assert row.stats["test/neg_elbo"] == results.mean_std(values)


def train_argv_for(flags):
    return sweeps.train_argv(
        "configs/vae.py", "data=digits", "unused", flags, python=sys.executable
    )


def test_vmap_refuses_what_cannot_be_vmapped(tmp_path):
    for vmap, message in [
        ({"latent_dim": (2, 3)}, "not a float"),
        ({"no_such": (1.0,)}, "no field"),
        ({"model__beta": (-1.0,)}, "must be >= 0"),
    ]:
        config = tiny_config()
        config.vmap = ml_collections.ConfigDict(vmap)
        with pytest.raises(ValueError, match=message):
            training.check_config(config)
    # Passes the checks, but the optimizer adds a transform only `if weight_decay`.
    config = tiny_config(**{"network.hidden": (8,), "train.num_epochs": 1})
    config.vmap = ml_collections.ConfigDict({"weight_decay": (0.0, 1e-4)})
    with pytest.raises(ValueError, match="outer sweep axis"):
        training.train_and_evaluate(config, str(tmp_path / "wd"))
