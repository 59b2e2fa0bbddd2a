"""Multi-host training for real, on this machine: two processes of one CPU device each, joined by
`jax.distributed` over loopback (gloo collectives), train the same computation as one process with
two forced CPU devices, and as the plain one-device run up to float summation order; stopped by a
signal to one of them, or both killed, they resume and end where the uninterrupted run ends. Under
SLURM (when `srun` exists), a 2-task job step trains the same run."""

from __future__ import annotations

import functools
import importlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from autoencoders import metrics, training
from autoencoders import workdir as workdirs
from tests.helpers import REPO, forced_cpu_devices_flags

# Tiny runs on the embedded digits: (config file, its argument, overrides). The VAE checkpoints
# every epoch and has epochs to spare after one, for the test that stops and kills it.
NUM_EPOCHS = 6
RUNS = {
    "vae": (
        "vae",
        "data=digits,latent=2",
        {"train.num_epochs": NUM_EPOCHS, "checkpoint.every_epochs": 1, "network.hidden": (16,)},
    ),
    "m2": (
        "m2",
        "data=digits,latent=2,labels=100",
        {"train.num_epochs": 2, "network.hidden": (16,)},
    ),
}
TIMEOUT = 300  # seconds a launch may take (each is ~10 s alone)
# Same maths; the sharded runs differ from one device by float32 summation order only.
TOLERANCE = 1e-4


def _env(devices: int = 1) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if devices > 1:
        env["XLA_FLAGS"] = forced_cpu_devices_flags(devices)
    return env


def _flags(family: str) -> list[str]:
    name, arg, overrides = RUNS[family]
    overrides = [f"--config.{k}={v}" for k, v in overrides.items()]
    return [f"--config=configs/{name}.py:{arg}", *overrides]


def _config(family: str):
    """The config `_flags` give the command line, for a run in this process."""
    name, arg, overrides = RUNS[family]
    config = importlib.import_module(f"configs.{name}").get_config(arg)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        functools.reduce(getattr, parents, config)[leaf] = value
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launch:
    """One training run as one or several `experiments.train` processes, output in log files."""

    def __init__(self, family: str, workdir: pathlib.Path, *, processes=1, devices=1, srun=False):
        self.workdir = workdir
        args = [sys.executable, "-m", "experiments.train", *_flags(family)]
        args.append(f"--workdir={workdir}")
        if srun:
            # JAX reads the two tasks' layout from SLURM's environment: no process flags.
            srun_args = ["srun", "--ntasks=2", "--cpus-per-task=1", "--immediate=120"]
            commands = [srun_args + ["--kill-on-bad-exit=1", *args]]
        elif processes > 1:
            coordinator = f"--coordinator_address=127.0.0.1:{_free_port()}"
            commands = [
                [*args, coordinator, f"--num_processes={processes}", f"--process_id={i}"]
                for i in range(processes)
            ]
        else:
            commands = [args]
        self.logs = [workdir.with_name(f"{workdir.name}.{i}.log") for i in range(len(commands))]
        self.procs = []
        for command, log in zip(commands, self.logs, strict=True):
            with open(log, "ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        command, cwd=REPO, env=_env(devices), stdout=out, stderr=subprocess.STDOUT
                    )
                )

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()

    def wait(self) -> None:
        """Every process exits 0, or the test fails with their log tails. One that fails (or the
        time limit) ends the others, which would wait for it; none is left running."""
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                codes = [proc.poll() for proc in self.procs]
                if all(c == 0 for c in codes) or any(c not in (None, 0) for c in codes):
                    break
                time.sleep(0.1)
        finally:
            self.kill()
        codes = [proc.returncode for proc in self.procs]
        tails = "\n".join(f"{log.name}:\n{log.read_text()[-3000:]}" for log in self.logs)
        assert codes == [0] * len(codes), f"exit codes {codes}\n{tails}"


def _final(workdir: pathlib.Path) -> tuple[list[np.ndarray], dict[str, float]]:
    """(the last checkpoint's parameter leaves, the last epoch's train and test metrics)."""
    config, _, params, epoch = workdirs.restore_params(str(workdir))
    values = {}
    for split in ("train", config.data.eval_split):
        row = metrics.latest_by_epoch(str(workdir / metrics.METRICS_FILE), split)[epoch]
        values.update({f"{split}/{k}": v for k, v in row.items() if _is_metric(k)})
    return [np.asarray(p) for p in jax.tree.leaves(params)], values


def _is_metric(name: str) -> bool:
    return name not in ("step", "epoch", "split", "time", "examples_per_sec")


def _max_differences(a: pathlib.Path, b: pathlib.Path) -> tuple[float, float]:
    """The largest parameter difference and relative metric difference of two runs."""
    (params_a, metrics_a), (params_b, metrics_b) = _final(a), _final(b)
    assert metrics_a.keys() == metrics_b.keys() and len(metrics_a) > 3
    params = max(float(np.max(np.abs(x - y))) for x, y in zip(params_a, params_b, strict=True))
    values = max(abs(metrics_a[k] - metrics_b[k]) / max(1.0, abs(metrics_a[k])) for k in metrics_a)
    return params, values


def _assert_close(a: pathlib.Path, b: pathlib.Path, what: str) -> None:
    params, values = _max_differences(a, b)
    print(
        f"{what}: max |parameter difference| {params:.3g}, max relative metric difference "
        f"{values:.3g}"
    )
    assert params < TOLERANCE and values < TOLERANCE, (what, params, values)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, str], pathlib.Path]:
    """{(family, layout): workdir} of finished runs: two forced 'devices' in one process and two
    'processes' of one device each, launched together, and the plain run on 'one' device, here
    meanwhile (the same config as the command line's). A family at a time: more processes than
    cores at once only slow each other down."""
    root = tmp_path_factory.mktemp("multihost")
    workdirs_ = {}
    for family in RUNS:
        launches = [
            Launch(family, root / f"{family}-devices", devices=2),
            Launch(family, root / f"{family}-processes", processes=2),
        ]
        try:
            workdirs_[family, "one"] = root / f"{family}-one"
            training.train_and_evaluate(_config(family), str(workdirs_[family, "one"]))
            for launch in launches:
                launch.wait()
        finally:
            for launch in launches:
                launch.kill()
        workdirs_[family, "devices"], workdirs_[family, "processes"] = (
            launch.workdir for launch in launches
        )
    return workdirs_


@pytest.mark.parametrize("family", sorted(RUNS))
def test_two_processes_equal_two_devices_and_one(runs, family):
    processes, devices, one = (runs[family, k] for k in ("processes", "devices", "one"))
    # The same program on the same global mesh: only the all-reduce's transport differs.
    _assert_close(processes, devices, f"{family}: 2 processes vs 2 devices")
    _assert_close(processes, one, f"{family}: 2 processes vs 1 device")
    # Process 0 alone writes the workdir's files; the checkpoints are complete.
    assert (processes / "log.txt").read_text().count("epoch ") >= 2
    assert sorted(os.listdir(processes / "checkpoints")) == sorted(os.listdir(one / "checkpoints"))
    starts = metrics.events(str(processes / metrics.METRICS_FILE), "start")
    assert len(starts) == 1


def test_stopped_and_killed_processes_resume_and_end_as_uninterrupted(runs, tmp_path):
    """SIGTERM to process 1 alone stops both at the same epoch, saved; re-launched, killed (-9,
    both) after the next checkpoint and re-launched again, they end as the uninterrupted run."""
    workdir = tmp_path / "vae-stopped"
    launch = Launch("vae", workdir, processes=2)
    _wait_for_checkpoint(launch, 1)
    launch.procs[1].send_signal(signal.SIGTERM)
    codes = [proc.wait(timeout=TIMEOUT) for proc in launch.procs]
    assert codes == [128 + signal.SIGINT, 128 + signal.SIGTERM], launch.logs[0].read_text()[-3000:]
    stopped = max(int(name) for name in os.listdir(workdir / "checkpoints"))
    assert stopped == max(metrics.latest_by_epoch(str(workdir / metrics.METRICS_FILE), "train"))

    launch = Launch("vae", workdir, processes=2)
    _wait_for_checkpoint(launch, stopped + 1)
    launch.kill()  # kill -9 of both processes, mid-run
    Launch("vae", workdir, processes=2).wait()
    starts = metrics.events(str(workdir / metrics.METRICS_FILE), "start")
    assert [s["resumed_from_epoch"] for s in starts[:2]] == [0, stopped]
    assert stopped < starts[2]["resumed_from_epoch"] < NUM_EPOCHS  # the kill cut a run short
    _assert_close(workdir, runs["vae", "processes"], "stopped, killed and resumed vs uninterrupted")


def _wait_for_checkpoint(launch: Launch, epoch: int) -> None:
    committed = launch.workdir / "checkpoints" / str(epoch) / "commit_success.txt"
    deadline = time.monotonic() + TIMEOUT
    while not committed.exists() and time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in launch.procs):
            break
        time.sleep(0.01)
    assert committed.exists(), launch.logs[0].read_text()[-3000:]


@pytest.mark.skipif(shutil.which("srun") is None, reason="needs SLURM (tools/slurm-local.sh up)")
def test_srun_two_tasks_equal_one_process(runs, tmp_path):
    launch = Launch("vae", tmp_path / "vae-srun", srun=True)
    launch.wait()
    _assert_close(launch.workdir, runs["vae", "one"], "srun 2 tasks vs 1 device")
