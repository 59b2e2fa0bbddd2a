"""`python -m experiments.train` end to end as a user runs it: outputs, errors, kill -9, resume."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from absl import flags

from autoencoders import evaluation, metrics
from autoencoders import workdir as workdirs
from experiments import cli
from tests.helpers import REPO

TINY = [
    "--config=configs/vae.py:data=digits,latent=2",
    "--config.network.hidden=(16,)",
    "--config.train.eval_every=1",
]


def train_command(workdir, *extra):
    return [sys.executable, "-m", "experiments.train", *TINY, f"--workdir={workdir}", *extra]


def run(args, **kw):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, **kw)


def imported_top_level_modules(importtime_stderr: str) -> set[str]:
    """The top-level packages `python -X importtime` reports importing."""
    lines = re.findall(r"^import time:.*\|\s*([\w.]+)\s*$", importtime_stderr, re.MULTILINE)
    return {name.split(".")[0] for name in lines}


def test_cli_writes_checkpoints_config_and_metrics(tmp_path):
    command = train_command(tmp_path, "--config.train.num_epochs=2")
    # -X importtime lists every import: a run on data that needs no TFDS (here the embedded
    # digits) must not import TensorFlow, ~9 s of start-up (its TensorBoard events are written
    # by autoencoders/tensorboard_events.py).
    result = run([command[0], "-X", "importtime", *command[1:]], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = imported_top_level_modules(result.stderr)
    assert {"jax", "orbax", "tensorboard"} <= imported
    assert not imported & {"tensorflow", "tensorflow_datasets", "clu"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["latent_dim"] == 2 and config["network"]["hidden"] == [16]
    assert (tmp_path / "checkpoints" / "2").is_dir()
    test_rows = metrics.latest_by_epoch(str(tmp_path / "metrics.jsonl"), "test")
    assert sorted(test_rows) == [1, 2] and test_rows[2]["neg_elbo"] > 0
    assert "epoch 2/2" in (tmp_path / "log.txt").read_text()
    assert "examples/s" in result.stderr


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--config.model.latnt_dim=3", 'Did you mean "latent_dim"'),
        ("--config.model.latent_dim=-1", "config.model.latent_dim=-1: must be > 0"),
        ("--config.likelihood.name=poisson", "config.likelihood.name='poisson': must be one of"),
    ],
)
def test_cli_config_errors_are_one_clear_line(tmp_path, flag, message):
    result = run(train_command(tmp_path, flag), timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_cli_refuses_a_workdir_another_run_is_training_in(tmp_path):
    with workdirs.lock(str(tmp_path)):  # this process plays the running job
        result = run(train_command(tmp_path), timeout=120)
    assert result.returncode == 1
    assert f"is in use by another training run (pid {os.getpid()} on " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "config.json").exists()


def test_kill_9_then_rerun_resumes_and_matches_uninterrupted_run(tmp_path):
    # Slow enough to be killed mid-run: many short epochs, a checkpoint after each.
    extra = ["--config.train.num_epochs=60", "--config.checkpoint.every_epochs=1"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(
        train_command(killed, *extra),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    checkpoints = killed / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        steps = (
            [p for p in checkpoints.glob("*") if p.name.isdigit()] if checkpoints.exists() else []
        )
        if steps and max(int(p.name) for p in steps) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rows_before = (killed / "metrics.jsonl").read_text().count("\n")

    resumed = run(train_command(killed, *extra), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from the checkpoint of epoch" in resumed.stderr
    assert (killed / "metrics.jsonl").read_text().count("\n") > rows_before  # appended

    uninterrupted = run(train_command(clean, *extra), timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    final_killed = metrics.latest_by_epoch(str(killed / "metrics.jsonl"), "test")[60]
    final_clean = metrics.latest_by_epoch(str(clean / "metrics.jsonl"), "test")[60]
    for key in ("neg_elbo", "recon_nll", "kl", "sq_err"):
        assert final_killed[key] == final_clean[key], key


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 1-epoch run on the embedded digits, for the evaluate command."""
    workdir = tmp_path_factory.mktemp("trained")
    result = run(train_command(workdir, "--config.train.num_epochs=1"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def evaluate_command(workdir, *extra):
    return [sys.executable, "-m", "experiments.evaluate", f"--workdir={workdir}", *extra]


def test_evaluate_with_fewer_samples_drops_the_larger_default_report_ks(trained_run):
    flags = ["--parts=density", "--num_samples=10", "--density_examples=20"]
    result = run(evaluate_command(trained_run, *flags), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "report_ks: dropped 100, 1000 (above --num_samples=10" in result.stderr
    written = json.loads((trained_run / "eval.json").read_text())
    assert written["options"]["num_samples"] == 10 and written["options"]["report_ks"] == [1, 10]
    assert written["options"]["density_examples"] == 20 and "density" in written


def test_evaluate_refuses_report_ks_given_above_num_samples(trained_run):
    flags = ["--parts=density", "--num_samples=10", "--report_ks=1,100"]
    result = run(evaluate_command(trained_run, *flags), timeout=300)
    assert result.returncode == 1
    assert "error: report_ks=(1, 100): each must be in 1..num_samples." in result.stderr
    assert "Traceback" not in result.stderr


def test_every_evaluation_option_is_a_flag_with_its_default():
    values = flags.FlagValues()
    holders = cli.define_dataclass_flags(evaluation.Options, flag_values=values)
    assert list(holders) == [f.name for f in dataclasses.fields(evaluation.Options)]
    values(["evaluate"])
    assert cli.dataclass_from_flags(evaluation.Options, holders) == evaluation.Options()
    values(["evaluate", "--report_ks=1,5", "--num_samples=7", "--latent_projection=tsne"])
    assert cli.dataclass_from_flags(evaluation.Options, holders) == dataclasses.replace(
        evaluation.Options(), report_ks=(1, 5), num_samples=7, latent_projection="tsne"
    )


@dataclasses.dataclass(frozen=True)
class _Fields:
    plain: int = evaluation.option(0, "An int.")
    ratio: float = evaluation.option(1.0, "A float.")
    sizes: tuple[int, ...] = evaluation.option((1, 2), "Some ints.")
    name: str = evaluation.option("a#b", "A string.")
    switch: bool = evaluation.option(False, "A switch.")


@dataclasses.dataclass(frozen=True)
class _Undocumented:
    plain: int = 0


def test_dataclass_flags_take_help_from_fields_and_types_from_defaults():
    values = flags.FlagValues()
    holders = cli.define_dataclass_flags(_Fields, flag_values=values)
    assert values["plain"].help == "An int."
    assert values["sizes"].help == "Some ints. (comma list of int)"
    values(["x", "--sizes=3,4", "--ratio=0.5", "--switch", "--name=z"])
    assert cli.dataclass_from_flags(_Fields, holders) == _Fields(0, 0.5, (3, 4), "z", True)
    with pytest.raises(TypeError, match=r"_Undocumented.plain: declare it as evaluation.option"):
        cli.define_dataclass_flags(_Undocumented, flag_values=flags.FlagValues())


def test_a_finished_run_rerun_says_it_is_complete_and_compiling_is_apart(tmp_path):
    """The first epoch's line names its seconds of compiling, and its examples/s leave them out;
    re-running a finished run trains nothing, says so, and exits 0."""
    command = [
        sys.executable, "-m", "experiments.train", "--config=configs/vae.py:data=digits,latent=2",
        "--config.network.hidden=(16,)", "--config.train.num_epochs=2", f"--workdir={tmp_path}",
    ]  # fmt: skip
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    (epoch_1,) = [line for line in first.stderr.splitlines() if line.startswith("epoch 1/2")]
    assert re.search(r"examples/s  [\d.]+ s \([\d.]+ s of it compiling\)$", epoch_1), epoch_1
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert f"Complete: {tmp_path} holds all 2 epochs; nothing to train" in again.stderr
    assert "epoch 1/2" not in again.stderr and "Resumed" not in again.stderr
