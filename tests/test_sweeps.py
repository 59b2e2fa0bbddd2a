"""Sweeps: declaration and expansion, the local launcher (parallel, skip, resume, failures,
Ctrl-C), vmapped members, and the report's numbers."""

from __future__ import annotations

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

from autoencoders import metrics, sweeps, training
from experiments import report
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
    config = sweeps.resolve_config(run.argv)
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
    sweeps.write_manifest(plan)
    manifest = sweeps.read_manifest(str(tmp_path))
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
        configs = [sweeps.resolve_config(r.argv) for r in plan.runs]
        assert {c.data.name for c in configs} == {dataset}
    lxl = sweeps.plan_from_command("configs/vae.py:sweep=latent_x_likelihood", "/s")
    kinds = {
        (c.likelihood.name, c.likelihood.learn_sigma, c.data.binarization, c.data.dequantize)
        for c in map(sweeps.resolve_config, (r.argv for r in lxl.runs))
    }
    assert kinds == {
        ("bernoulli", False, "dynamic", False),
        ("continuous_bernoulli", False, "none", False),
        ("gaussian", True, "none", True),
    }
    kw = sweeps.plan_from_command("configs/vae.py:sweep=kingma_welling_fig2", "/s")
    c = sweeps.resolve_config(kw.runs[-1].argv)
    assert (c.model.latent_dim, tuple(c.network.hidden), c.network.activation) == (
        200,
        (500,),
        "tanh",
    )
    assert (c.optimizer.name, c.train.batch_size) == ("adagrad", 100)
    frey = sweeps.plan_from_command("configs/vae.py:sweep=kingma_welling_frey", "/s")
    c = sweeps.resolve_config(frey.runs[0].argv)
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
        return [sweeps.Outcome(r, 0, 0.0, "") for r in runs]


def test_launch_reports_a_run_config_flags_reject_without_starting_it(tmp_path):
    plan = _plan(
        sweeps.chain(
            sweeps.axis("model.latent_dim", [2]), sweeps.point({"model.no_such_field": 1})
        ),
        sweep_dir=str(tmp_path),
    )
    backend = RecordingBackend()
    summary = sweeps.launch(plan, backend)
    assert [r.id for r in backend.given] == [0]
    (failed,) = summary.failed
    assert failed.run.id == 1
    assert "no_such_field" in sweeps.log_tail(failed.log_path)


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
    backend = sweeps.LocalBackend(workers=2, grace_seconds=10)
    deadline = time.monotonic() + 30

    def ctrl_c_once_both_started(signum, frame):
        if all((tmp_path / f"r{i}.started").exists() for i in range(2)):
            raise KeyboardInterrupt
        if time.monotonic() < deadline:
            signal.setitimer(signal.ITIMER_REAL, 0.2)

    previous = signal.signal(signal.SIGALRM, ctrl_c_once_both_started)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            backend.run(runs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
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
    assert [sweeps.status(r) for r in good] == ["finished"] * 3
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

    # The report's numbers are the runs' own final metrics.
    paths = report.write_report(str(sweep_dir), str(tmp_path / "report"))
    assert {pathlib.Path(p).name for p in paths} >= {
        "table.md",
        "table.csv",
        "bound_vs_latent_dim.png",
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


def test_report_means_and_stds_over_seeds(tmp_path):
    """Two seeds of one setting become one row: mean and sample std of their final metrics."""
    plan = _plan(sweeps.axis("seed", [0, 1]), sweep_dir=str(tmp_path))
    sweeps.write_manifest(plan)
    config = sweeps.config_json(sweeps.resolve_config(plan.runs[0].argv))
    for run, value in zip(plan.runs, [40.0, 44.0], strict=True):
        os.makedirs(run.workdir)
        with open(os.path.join(run.workdir, "config.json"), "w") as f:
            json.dump({**config, "seed": run.overrides["seed"]}, f)
        log = metrics.MetricsLog(run.workdir)
        log.write(step=10, epoch=1, split="train", values={"neg_elbo": value + 1})
        log.write(step=10, epoch=1, split="test", values={"neg_elbo": value})
        log.close()
    results, missing = report.load_results(str(tmp_path))
    assert not missing
    (row,) = report.summarize(results)
    assert row.seeds == (0, 1)
    mean, std = row.stats["test/neg_elbo"]
    assert mean == 42.0 and std == pytest.approx(2.0**1.5)
    md = report.markdown_table([row], results)
    assert "42.00 ± 2.83" in md and "test/neg_elbo (nats per image)" in md


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
    config = sweeps.resolve_config(run.argv)  # through the --config.vmap flag, as a sweep does
    final = training.train_and_evaluate(config, run.workdir)
    assert sweeps.status(run) == "finished"
    members = sweeps.result_dirs(sweeps.config_json(config), run.workdir)
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
        separate = sweeps.resolve_config(separate_argv)
        with open(os.path.join(member_dir, "config.json")) as f:
            assert json.load(f) == sweeps.config_json(separate)  # the member is that run
        separate_final = training.train_and_evaluate(separate, str(tmp_path / name))
        *_, member_params, _ = training.restore_params(member_dir)
        *_, separate_params, _ = training.restore_params(str(tmp_path / name))
        for a, b in zip(
            jax.tree.leaves(member_params), jax.tree.leaves(separate_params), strict=True
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        for key in ("test/neg_elbo", "test/kl", "train/loss", "train/learning_rate"):
            assert final[f"{name}/{key}"] == pytest.approx(separate_final[key], rel=1e-5), key

    # Killed after epoch 1: the members resume together and end where the whole run ended.
    cut = tmp_path / "cut"
    shutil.copytree(run.workdir, cut)
    for member_dir in sweeps.result_dirs(sweeps.config_json(config), str(cut)):
        shutil.rmtree(os.path.join(member_dir, "checkpoints", "2"))
    resumed = training.train_and_evaluate(config, str(cut))
    for key, value in final.items():
        if "examples_per_sec" not in key:
            assert resumed[key] == value, key

    # The report averages the seed members of each (learning rate, β) setting.
    sweeps.write_manifest(plan)
    results, missing = report.load_results(plan.sweep_dir)
    assert not missing and len(results) == 8
    rows = report.summarize(results)
    assert len(rows) == 4 and all(row.seeds == (0, 1) for row in rows)
    for row in rows:
        values = [
            metrics.latest_by_epoch(os.path.join(d, "metrics.jsonl"), "test")[2]["neg_elbo"]
            for d in members
            if all(f"{k}={v}" in d for k, v in row.setting.items())
        ]
        assert len(values) == 2
        assert row.stats["test/neg_elbo"] == report.mean_std(values)


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
