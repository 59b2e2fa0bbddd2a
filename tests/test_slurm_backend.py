"""The SLURM backend against a real cluster (`tools/slurm-local.sh up` starts one on this machine;
CI does): a sweep submitted as one job array finishes and is reported, `--detach` returns and the
same command later attaches to the queued jobs, a job cancelled mid-training is reported failed
with its log tail and resumes when the sweep is re-run (nothing finished is redone), a preempted
job is requeued and resumes from its checkpoint, and `--dry_run` prints the sbatch script."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

from autoencoders import launch, metrics, results, slurm, sweeps
from tests.helpers import REPO


def _cluster_missing() -> str | None:
    """Why the tests cannot submit here, or None."""
    if shutil.which("sbatch") is None:
        return "no sbatch on PATH (tools/slurm-local.sh up starts a one-node cluster)"
    try:
        nodes = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20
        ).stdout.split()
    except subprocess.TimeoutExpired:
        nodes = []
    if not any(state.rstrip("*~#") in {"idle", "mix", "alloc"} for state in nodes):
        return f"sinfo shows no node ready ({' '.join(nodes) or 'none'})"
    return None


requires_slurm = pytest.mark.skipif((reason := _cluster_missing()) is not None, reason=reason or "")

SWEEPS = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    if name == "four":
        return sweeps.product(sweeps.axis("model.latent_dim", [2, 3]), sweeps.axis("seed", [0, 1]))
    # "stop": two long runs the test stops mid-training (run 0 cancelled, run 1 preempted) and a
    # short one.
    return sweeps.chain(
        sweeps.point({"seed": 1, "train.num_epochs": 300}),
        sweeps.point({"seed": 2, "train.num_epochs": 300}),
        sweeps.point({"seed": 0, "train.num_epochs": 2}),
    )
"""
TINY = ["--config.network.hidden=(16,)"]
SLURM_FLAGS = ["--backend=slurm", "--slurm_time_min=10", "--slurm_additional=comment=ae-test"]


def _sweep(config_file, sweep, sweep_dir, *extra, background=False):
    command = [
        sys.executable,
        "-m",
        "experiments.sweep",
        f"--config={config_file}:sweep={sweep},data=digits",
        f"--sweep_dir={sweep_dir}",
        *SLURM_FLAGS,
        *TINY,
        *extra,
    ]
    if background:
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def _plan(config_file, sweep, sweep_dir, *extra):
    return sweeps.plan_from_command(
        f"{config_file}:sweep={sweep},data=digits", str(sweep_dir), [*TINY, *extra]
    )


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("slurm") / "slurm_sweeps.py"
    path.write_text(SWEEPS)
    return path


def test_sbatch_options_from_flags():
    assert slurm.parse_sbatch_options("account=lab, qos=high,--exclusive,mail-type=END") == {
        "account": "lab",
        "qos": "high",
        "exclusive": True,
        "mail_type": "END",
    }
    with pytest.raises(ValueError, match="not key=value"):
        slurm.parse_sbatch_options("account=")
    with pytest.raises(ValueError, match="--slurm_partition"):
        slurm.SlurmOptions(additional={"partition": "gpu"})
    with pytest.raises(ValueError, match="submitit sets it"):
        slurm.SlurmOptions(additional={"array": "0-3"})
    with pytest.raises(ValueError, match="--slurm_mem=8 GB"):
        slurm.SlurmOptions(mem="8 GB")


@requires_slurm
def test_sweep_as_one_job_array_detached_then_attached_and_reported(config_file, tmp_path):
    sweep_dir = tmp_path / "four"
    epochs = ["--config.train.num_epochs=2"]
    dry = _sweep(
        config_file, "four", sweep_dir, *epochs, "--slurm_array_parallelism=2", "--dry_run"
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    for line in (
        "#SBATCH --array=0-3%2",
        "#SBATCH --time=10",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --comment=ae-test",
        "-m submitit.core._submit",
    ):
        assert line in dry.stdout, line
    assert "--workdir=" in dry.stdout and not (sweep_dir / "slurm").exists()  # nothing submitted

    detached = _sweep(config_file, "four", sweep_dir, *epochs, "--detach")
    assert detached.returncode == 0, detached.stdout + detached.stderr
    assert "0 finished now, 4 queued or running, 0 failed" in detached.stdout
    jobs = json.loads((sweep_dir / "slurm" / slurm.JOBS_FILE).read_text())
    assert len(jobs) == 4 and len({job.split("_")[0] for job in jobs.values()}) == 1  # one array

    # The same command again waits for those jobs rather than submitting them twice (a job
    # may have finished in between: its run is then finished earlier).
    attached = _sweep(config_file, "four", sweep_dir, *epochs)
    assert attached.returncode == 0, attached.stdout + attached.stderr
    summary = re.search(r"(\d+) finished earlier, (\d+) finished now, 0 failed", attached.stdout)
    assert summary and int(summary[1]) + int(summary[2]) == 4, attached.stdout
    assert "] submitted" not in attached.stdout
    for name, job in jobs.items():  # {run name: job id}
        waited = f"job {job} already" in attached.stdout
        assert waited or f"finished earlier: {name}\n" in attached.stdout, (name, job)
    assert json.loads((sweep_dir / "slurm" / slurm.JOBS_FILE).read_text()) == jobs
    loaded, missing = results.load_results(str(sweep_dir))
    assert len(loaded) == 4 and not missing


def _checkpoints(workdir: str) -> list[int]:
    path = pathlib.Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in path.glob("*") if p.name.isdigit()) if path.exists() else []


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _resumed_from(workdir: str) -> list[int]:
    events = metrics.events(os.path.join(workdir, "metrics.jsonl"), "start")
    return [e["resumed_from_epoch"] for e in events]


@requires_slurm
def test_cancelled_job_fails_with_its_log_tail_and_resumes_preempted_job_is_requeued(
    config_file, tmp_path
):
    sweep_dir = tmp_path / "stop"
    plan = _plan(config_file, "stop", sweep_dir)
    cancelled, preempted, short = plan.runs
    launcher = _sweep(config_file, "stop", sweep_dir, background=True)
    try:
        jobs_file = sweep_dir / "slurm" / slurm.JOBS_FILE
        _wait_for(jobs_file.exists, "the jobs' ids")
        jobs = json.loads(jobs_file.read_text())
        _wait_for(lambda: _checkpoints(cancelled.workdir), f"a checkpoint of {cancelled.name}")
        subprocess.run(["scancel", jobs[cancelled.name]], check=True)
        _wait_for(lambda: _checkpoints(preempted.workdir), f"a checkpoint of {preempted.name}")
        # What SLURM sends before a preemption or the time limit (submitit's signal).
        subprocess.run(["scancel", "--signal=USR2", jobs[preempted.name]], check=True)
        out, _ = launcher.communicate(timeout=240)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1, out
    assert "0 finished earlier, 2 finished now, 1 failed" in out
    # The cancelled run: failed, with the tail of its log (training stopped by SLURM's SIGTERM).
    report = out.split(f"--- [{cancelled.id}] {cancelled.name} failed (")[1]
    assert "interrupted at epoch" in report or "cancelled or killed" in report, report
    # The preempted run: requeued by submitit, resumed from its checkpoint in the same job.
    assert f"[{preempted.id}] requeued" in out
    assert launch.status(preempted) == "finished"
    first, again = _resumed_from(preempted.workdir)
    assert first == 0 and again > 0
    stopped_at = _checkpoints(cancelled.workdir)[-1]
    sizes = {
        r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl"))
        for r in (preempted, short)
    }

    # Re-running resubmits only the cancelled run, which resumes from its last checkpoint.
    rerun = _sweep(config_file, "stop", sweep_dir)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "2 finished earlier, 1 finished now, 0 failed" in rerun.stdout
    assert f"[{cancelled.id}] submitted" in rerun.stdout
    assert launch.status(cancelled) == "finished"
    assert _resumed_from(cancelled.workdir)[-1] == stopped_at
    assert sizes == {
        r.name: os.path.getsize(os.path.join(r.workdir, "metrics.jsonl"))
        for r in (preempted, short)
    }
