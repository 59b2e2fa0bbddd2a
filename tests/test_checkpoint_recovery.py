"""A damaged latest checkpoint is set aside, never deleted, and the run resumes from the newest
one that restores, ending where an uninterrupted run ends; evaluation falls back the same way
(leaving the files alone); a checkpoint of another model is still refused as before."""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from autoencoders import metrics, training
from autoencoders import workdir as workdirs
from tests.helpers import REPO, tiny_config


def damage(step_dir: pathlib.Path, how: str) -> None:
    """Damages the checkpoint in `step_dir` the way a crash, a full disk or a bad copy might."""
    item = step_dir / "default"
    if how == "truncated_array":
        arrays = sorted((item / "ocdbt.process_0" / "d").iterdir(), key=lambda p: p.stat().st_size)
        with open(arrays[-1], "r+b") as f:
            f.truncate(arrays[-1].stat().st_size // 2)
    elif how == "garbled_metadata":
        (item / "_METADATA").write_text("{not json")
    elif how == "no_commit_marker":
        (step_dir / "commit_success.txt").unlink()
    elif how == "empty_step_dir":
        shutil.rmtree(step_dir)
        step_dir.mkdir()
    else:
        raise ValueError(how)


DAMAGES = ("truncated_array", "garbled_metadata", "no_commit_marker", "empty_step_dir")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> pathlib.Path:
    """A tiny run's workdir with checkpoints 1, 2 and 3 (never modified: tests copy it)."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    training.train_and_evaluate(tiny_config(), str(workdir))
    return workdir


def copy_of(workdir: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    return copy


def last_start(workdir: pathlib.Path) -> dict:
    return metrics.events(str(workdir / "metrics.jsonl"), "start")[-1]


def assert_same_params(a: pathlib.Path, b: pathlib.Path, epoch: int | None = None) -> None:
    *_, params_a, epoch_a = workdirs.restore_params(str(a), epoch)
    *_, params_b, epoch_b = workdirs.restore_params(str(b), epoch)
    assert epoch_a == epoch_b
    for x, y in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def damage_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be restored" in r.getMessage()]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_latest_checkpoint_is_moved_aside_and_the_run_resumes(
    how, finished, tmp_path, caplog
):
    workdir = copy_of(finished, tmp_path)
    damage(workdir / "checkpoints" / "3", how)
    with caplog.at_level(logging.WARNING):
        final = training.train_and_evaluate(tiny_config(), str(workdir))

    (line,) = damage_warnings(caplog)  # one line: which epoch, why, where it went
    assert "epoch 3" in line and "moved to" in line and "\n" not in line
    assert (workdir / "checkpoints_damaged" / "3").is_dir()  # kept, not deleted
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2", "3"]
    start = last_start(workdir)
    assert start["resumed_from_epoch"] == 2
    (record,) = start["damaged_checkpoints"]
    assert record["epoch"] == 3 and record["moved_to"] == os.path.join("checkpoints_damaged", "3")
    assert record["error"]
    # The replayed epoch 3 ends where the uninterrupted run ended.
    assert_same_params(workdir, finished)
    done = metrics.latest_by_epoch(str(finished / "metrics.jsonl"), "test")[3]
    for key, value in done.items():
        if key not in ("time", "step") and f"test/{key}" in final:
            assert final[f"test/{key}"] == value, key


def test_several_damaged_checkpoints_fall_back_to_the_newest_that_restores(
    finished, tmp_path, caplog
):
    workdir = copy_of(finished, tmp_path)
    damage(workdir / "checkpoints" / "3", "truncated_array")
    damage(workdir / "checkpoints" / "2", "garbled_metadata")
    (workdir / "checkpoints_damaged" / "3").mkdir(parents=True)  # an earlier fallback's
    with caplog.at_level(logging.WARNING):
        training.train_and_evaluate(tiny_config(), str(workdir))
    assert len(damage_warnings(caplog)) == 2
    start = last_start(workdir)
    assert start["resumed_from_epoch"] == 1
    moved = {r["epoch"]: r["moved_to"] for r in start["damaged_checkpoints"]}
    aside = "checkpoints_damaged"
    assert moved == {3: os.path.join(aside, "3.1"), 2: os.path.join(aside, "2")}
    assert_same_params(workdir, finished)


def test_with_every_checkpoint_damaged_the_run_starts_over(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    for epoch in ("1", "2", "3"):
        damage(workdir / "checkpoints" / epoch, "no_commit_marker")
    training.train_and_evaluate(tiny_config(), str(workdir))
    start = last_start(workdir)
    assert start["resumed_from_epoch"] == 0 and len(start["damaged_checkpoints"]) == 3
    assert sorted(os.listdir(workdir / "checkpoints_damaged")) == ["1", "2", "3"]
    assert_same_params(workdir, finished)


def test_evaluation_falls_back_and_leaves_the_files_alone(finished, tmp_path, caplog):
    workdir = copy_of(finished, tmp_path)
    damage(workdir / "checkpoints" / "3", "truncated_array")
    with caplog.at_level(logging.WARNING):
        *_, epoch = workdirs.restore_params(str(workdir))
    assert epoch == 2 and len(damage_warnings(caplog)) == 1
    assert_same_params(workdir, finished, epoch=2)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2", "3"]
    assert not (workdir / "checkpoints_damaged").exists()
    with pytest.raises(ValueError, match=r"^epoch 3: .* cannot be restored .*saved epochs: 1, 2\."):
        workdirs.restore_params(str(workdir), 3)
    with pytest.raises(FileNotFoundError, match=r"epoch 9: .*saved epochs: 1, 2, 3\)"):
        workdirs.restore_params(str(workdir), 9)


def test_a_checkpoint_of_another_model_is_refused_not_set_aside(finished, tmp_path):
    workdir = copy_of(finished, tmp_path)
    config = tiny_config(**{"network.hidden": (64,)})
    with pytest.raises(ValueError, match="does not fit this config's model or optimizer"):
        training.train_and_evaluate(config, str(workdir), allow_config_change=True)
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2", "3"]
    assert not (workdir / "checkpoints_damaged").exists()


def test_vmapped_members_resume_together_from_the_newest_epoch_all_restore(tmp_path):
    config = tiny_config(**{"vmap": {"seed": (0, 1)}})
    full, cut = tmp_path / "full", tmp_path / "cut"
    final = training.train_and_evaluate(config, str(full))
    shutil.copytree(full, cut)
    first, second = workdirs.result_dirs(workdirs.config_json(config), str(cut))
    damage(pathlib.Path(first) / "checkpoints" / "3", "truncated_array")
    damage(pathlib.Path(second) / "checkpoints" / "2", "garbled_metadata")

    resumed = training.train_and_evaluate(config, str(cut))
    for member, epoch in ((first, 3), (second, 2)):
        start = last_start(pathlib.Path(member))
        assert start["resumed_from_epoch"] == 1
        assert [r["epoch"] for r in start["damaged_checkpoints"]] == [epoch]
        assert (pathlib.Path(member) / "checkpoints_damaged" / str(epoch)).is_dir()
        assert sorted(os.listdir(pathlib.Path(member) / "checkpoints")) == ["1", "2", "3"]
    for key, value in final.items():
        if "examples_per_sec" not in key:
            assert resumed[key] == value, key


def test_cli_reports_a_damaged_checkpoint_in_one_line(tmp_path):
    command = [
        sys.executable,
        "-m",
        "experiments.train",
        "--config=configs/vae.py:data=digits,latent=2",
        "--config.network.hidden=(16,)",
        "--config.train.num_epochs=2",
        "--config.checkpoint.every_epochs=1",
        f"--workdir={tmp_path}",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    damage(tmp_path / "checkpoints" / "2", "truncated_array")
    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (line,) = [line for line in rerun.stderr.splitlines() if "cannot be restored" in line]
    assert "epoch 2" in line and "checkpoints_damaged" in line
    assert "Traceback" not in rerun.stderr and "Exception ignored" not in rerun.stderr
    assert "Resumed from the checkpoint of epoch 1 of 2." in rerun.stderr
    start = json.loads(
        [row for row in (tmp_path / "metrics.jsonl").read_text().splitlines() if "start" in row][-1]
    )
    assert start["damaged_checkpoints"][0]["epoch"] == 2
