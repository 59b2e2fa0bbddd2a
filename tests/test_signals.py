"""SIGINT, SIGTERM and kill -9 against the real commands, in subprocesses: a run stops cleanly at
any moment (one line, exit status 128 + the signal, the last epoch saved) and resumes; a sweep's
runs die with their launcher."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from autoencoders import metrics
from tests.helpers import REPO

# Many short epochs (milliseconds each), so that a signal can land between two. No periodic
# checkpoint: the one an interrupted run leaves is the one it saved on the signal.
EPOCHS = 400
TINY = [
    "--config=configs/vae.py:data=digits,latent=2",
    "--config.network.hidden=(16,)",
    f"--config.train.num_epochs={EPOCHS}",
    "--config.train.eval_every=100",
    f"--config.checkpoint.every_epochs={EPOCHS + 1}",
]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
LINE = r"interrupted (during start-up|at epoch (\d+)); re-run the same command to resume"


def wait_for(condition, what: str, timeout: float = 60.0):
    """Polls `condition` until it returns a true value (returned), failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def handles_sigterm(pid: int) -> bool:
    """Whether the process catches SIGTERM: `interrupts.install()` has run (Linux's /proc)."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(line for line in f if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def epochs_done(workdir) -> int:
    """The last epoch of the run's progress lines in log.txt (0 before the first)."""
    path = workdir / "log.txt"
    text = path.read_text() if path.exists() else ""
    return max((int(e) for e in re.findall(r"epoch (\d+)/", text)), default=0)


def train_command(workdir) -> list[str]:
    return [sys.executable, "-m", "experiments.train", *TINY, f"--workdir={workdir}"]


def start_training(workdir, stderr_path):
    with open(stderr_path, "w") as err:
        return subprocess.Popen(
            train_command(workdir),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=ENV,
        )


MOMENTS = {
    # Right after the handlers are installed: the slow imports are still running.
    "imports": lambda proc, workdir: handles_sigterm(proc.pid),
    # The run holds its workdir: loading data, building the model, compiling the first epoch.
    "start-up": lambda proc, workdir: (workdir / "log.txt").exists(),
    # Between epochs, a few epochs in.
    "training": lambda proc, workdir: epochs_done(workdir) >= 3,
}


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_stops_the_run_cleanly_and_it_resumes(tmp_path, signum, moment):
    workdir, stderr_path = tmp_path / "run", tmp_path / "stderr.txt"
    proc = start_training(workdir, stderr_path)
    wait_for(lambda: proc.poll() is not None or MOMENTS[moment](proc, workdir), moment)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == 128 + signum
    stderr = stderr_path.read_text()
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    (line,) = list(re.finditer(LINE, stderr))
    stopped_at = int(line[2] or 0)
    if moment == "training":
        assert stopped_at >= 3
    if stopped_at:  # the epoch it stopped at is saved, though no checkpoint was due
        assert (workdir / "checkpoints" / str(stopped_at)).is_dir()

    resumed = subprocess.run(
        train_command(workdir), cwd=REPO, capture_output=True, text=True, env=ENV, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if stopped_at:
        assert f"Resumed from the checkpoint of epoch {stopped_at} of " in resumed.stderr
    assert EPOCHS in metrics.latest_by_epoch(str(workdir / "metrics.jsonl"), "test")


# Work that never reaches a safe point (evaluate's, with at_once=True, has none).
STUCK = """
import sys, time
from autoencoders import interrupts

interrupts.install()
with interrupts.exits_cleanly(at_once=sys.argv[1] == "at_once"):
    print("working", flush=True)
    time.sleep(60)
"""


def start_script(tmp_path, script: str, *args: str):
    """`python -c script args` in the repository, stdout piped, stderr to a file: (the process,
    the file's path)."""
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    return proc, stderr_path


def start_stuck(tmp_path, mode):
    proc, stderr_path = start_script(tmp_path, STUCK, mode)
    assert proc.stdout.readline() == "working\n"
    return proc, stderr_path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_same_signal_twice_stops_at_once(tmp_path, signum):
    proc, stderr_path = start_stuck(tmp_path, "deferred")
    name = signal.Signals(signum).name
    proc.send_signal(signum)
    wait_for(lambda: f"{name}: stopping at the next safe point" in stderr_path.read_text(), name)
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == -signum  # died of it
    assert f"{name} again: stopping now" in stderr_path.read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_work_without_safe_points_stops_at_the_first_signal(tmp_path, signum):
    proc, stderr_path = start_stuck(tmp_path, "at_once")
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == 128 + signum
    line = "interrupted during its work; re-run the same command to resume\n"
    assert stderr_path.read_text() == line


# A launcher whose child's parent is a thread that ends before the launcher does: Linux sends the
# child its death signal as each ends, as when a multithreaded launcher is killed.
THREADED_LAUNCHER = """
import os, subprocess, sys, threading, time
from autoencoders import interrupts

def start():
    env = {**os.environ, interrupts.LAUNCHER_PID: str(os.getpid())}
    argv = [sys.executable, "-c", sys.argv[1], "deferred"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    print(child.pid, flush=True)
    assert child.stdout.readline() == "working\\n"

thread = threading.Thread(target=start)
thread.start()
thread.join()
time.sleep(1)  # the first death signal is handled before the second is sent
"""


def test_a_dead_launchers_repeated_death_signal_is_one_clean_stop(tmp_path):
    launcher, stderr_path = start_script(tmp_path, THREADED_LAUNCHER, STUCK)
    assert launcher.wait(timeout=60) == 0, stderr_path.read_text()
    child = int(launcher.stdout.read())
    time.sleep(0.5)  # for the second signal to be handled
    try:
        assert alive(child), stderr_path.read_text()  # stopping at its next safe point, not at once
        assert stderr_path.read_text() == (
            "SIGTERM: stopping at the next safe point (SIGTERM again: at once)\n"
        )
    finally:
        os.kill(child, signal.SIGKILL)


TWO_RUNS = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    return sweeps.axis("model.latent_dim", [2, 3])
"""


def _sweep(config_file, sweep_dir, stdout_path):
    with open(stdout_path, "w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments.sweep",
                f"--config={config_file}:sweep=two,data=digits",
                f"--sweep_dir={sweep_dir}",
                "--workers=2",
                *TINY[1:],
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
            start_new_session=True,  # its own process group, to kill whole
        )


def _children(stdout_path) -> list[int]:
    return [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", stdout_path.read_text())]


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_a_sweeps_runs_stop_with_their_launcher_and_a_relaunch_finishes_them(tmp_path, how):
    config_file, sweep_dir = tmp_path / "two.py", tmp_path / "sweep"
    config_file.write_text(TWO_RUNS)
    launcher = _sweep(config_file, sweep_dir, tmp_path / "first.txt")
    wait_for(lambda: len(_children(tmp_path / "first.txt")) == 2, "both runs")
    pids = _children(tmp_path / "first.txt")
    workdirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    # Both in start-up (their imports take seconds), so that neither can finish before the kill.
    wait_for(lambda: all(handles_sigterm(pid) for pid in pids), "both runs' handlers")
    if how == "kill -9":  # of its process group, as a terminal or a job scheduler does
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    else:  # a cluster's cancel: the launcher stops its runs, reports them, and exits
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=60) == 128 + signal.SIGTERM
        report = (tmp_path / "first.txt").read_text()
        assert report.count("(exit 130); it resumes") == 2, report
        assert not any(alive(pid) for pid in pids)  # reported stopped: really stopped
    wait_for(lambda: not any(alive(pid) for pid in pids), "no run left", timeout=30)
    for workdir in workdirs:  # each stopped cleanly
        assert re.search(LINE, (workdir / "launch.log").read_text())

    relaunch = _sweep(config_file, sweep_dir, tmp_path / "second.txt")
    assert relaunch.wait(timeout=300) == 0, (tmp_path / "second.txt").read_text()[-3000:]
    assert "0 finished earlier, 2 finished now, 0 failed" in (tmp_path / "second.txt").read_text()
