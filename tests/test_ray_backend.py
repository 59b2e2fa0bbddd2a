"""The Ray backend on a local Ray cluster (started by the launcher, no dashboard, no usage stats):
a 4-run sweep as Ray tasks, one of whose workers is killed with SIGKILL mid-training; that run is
reported failed with its log tail, the others finish, and re-running the sweep resumes it from its
checkpoint without redoing the others; the report then lists the 4 runs."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from autoencoders import launch, metrics, results, sweeps
from tests.helpers import REPO

pytest.importorskip("ray", reason="needs ray: pip install -e '.[ray]'")

SWEEP = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    # Run 0 is long: the test kills its Ray worker mid-training.
    return sweeps.chain(
        sweeps.point({"seed": 0, "train.num_epochs": 150}),
        sweeps.point({"seed": 1, "train.num_epochs": 2}),
        sweeps.point({"seed": 2, "train.num_epochs": 2}),
        sweeps.point({"seed": 3, "train.num_epochs": 2}),
    )
"""


def _training_process(workdir: str) -> int | None:
    """The pid of the training process writing `workdir`, if one has started."""
    flag = f"--workdir={workdir}".encode()
    for proc in pathlib.Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it has exited
            continue
        if proc.name.isdigit() and flag in argv and b"experiments.train" in argv:
            return int(proc.name)
    return None


def _parent(pid: int) -> int:
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state


def _checkpoints(workdir: str) -> list[int]:
    path = pathlib.Path(workdir) / "checkpoints"
    return [int(p.name) for p in path.iterdir() if p.name.isdigit()] if path.exists() else []


def test_sweep_on_local_ray_survives_a_killed_worker_and_resumes(tmp_path):
    config_file = tmp_path / "ray_sweep.py"
    config_file.write_text(SWEEP)
    sweep_dir = tmp_path / "sweep"
    spec = f"{config_file}:sweep=tiny,data=digits"
    command = [
        sys.executable,
        "-m",
        "experiments.sweep",
        f"--config={spec}",
        f"--sweep_dir={sweep_dir}",
        "--backend=ray",
        "--config.network.hidden=(16,)",
    ]
    plan = sweeps.plan_from_command(spec, str(sweep_dir), ["--config.network.hidden=(16,)"])
    killed, *rest = plan.runs
    launcher = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not _checkpoints(killed.workdir):
            assert time.monotonic() < deadline, "run 0 wrote no checkpoint"
            time.sleep(0.2)
        child = _training_process(killed.workdir)
        assert child is not None
        os.kill(_parent(child), signal.SIGKILL)  # the Ray worker running the task
        out, _ = launcher.communicate(timeout=240)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1, out
    assert "0 finished earlier, 3 finished now, 1 failed" in out
    report = out.split(f"--- [{killed.id}] {killed.name} failed (Ray ")[1]
    assert "ended with no exit status" in report
    assert "dashboard" not in out.lower()  # Ray prints its address when it starts one
    stopped_at = max(_checkpoints(killed.workdir))  # the newest complete one
    sizes = {r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl")) for r in rest}

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "3 finished earlier, 1 finished now, 0 failed" in rerun.stdout
    assert launch.status(killed) == "finished"
    starts = metrics.events(os.path.join(killed.workdir, "metrics.jsonl"), "start")
    assert starts[-1]["resumed_from_epoch"] == stopped_at > 0
    assert sizes == {
        r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl")) for r in rest
    }
    loaded, missing = results.load_results(str(sweep_dir))
    assert len(loaded) == 4 and not missing
