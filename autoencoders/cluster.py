"""Sweeps on a cluster: what a worker runs (`RunCommand`) and the Ray backend; the SLURM backend,
which runs the same `RunCommand`, is `slurm.py`.

Both backends run each run's training command (`Run.argv`) unchanged, in the launcher's working
directory (relative config paths and workdirs mean the same on a shared filesystem), appending
its output to `<workdir>/launch.log` as `launch.LocalBackend` does. Manifest, workdirs, locks,
skipping finished runs and resuming the others stay `launch.launch`'s: a backend only decides
where a command runs and learns how it ended.

- `RayBackend`: one Ray task per run on an existing cluster (`address`) or a local one, with
  `num_cpus` / `num_gpus` per run; a task whose worker dies is a failed run, reported with its
  log tail.
- `slurm.SlurmBackend`: one job array per launch (see its module).

Neither resubmits a run whose job was cancelled or killed: a cancel is someone's decision, and a
crash repeated in a loop helps nobody. Re-running the same sweep command resubmits exactly the
unfinished runs, which resume from their checkpoints; finished runs are skipped.

This module imports nothing heavy at module level (`launch` and the engines are imported where
used): SLURM and Ray workers unpickle `RunCommand` from it and should start in a fraction of a
second, without JAX or TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from autoencoders import interrupts

if TYPE_CHECKING:
    from autoencoders.launch import Outcome
    from autoencoders.sweeps import Run


# ---------------------------------------------------------------------------------------------
# What a worker runs: one training command, its output appended to the run's launch.log
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunCommand:
    """A run's training command as a submitit callable (`__call__`, `checkpoint`) and the body
    of a Ray task. Returns the command's exit status."""

    argv: tuple[str, ...]
    log_path: str
    cwd: str
    grace_seconds: float = 60.0  # SIGINT to SIGKILL; below submitit's 90 s warning before a kill
    _child: subprocess.Popen | None = dataclasses.field(default=None, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_child": None}  # a requeued task starts a new child

    def __call__(self, where: str | None = None) -> int:
        where = where or _slurm_where()
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {where}: {' '.join(self.argv)}\n"
            )
            log.flush()
            # When this worker dies, the child gets SIGTERM (`interrupts._die_with_launcher`) and
            # stops at the end of its epoch, saved: in a session of its own, it is out of reach
            # of Ray's SIGKILL to the worker's process group (SLURM still finds it by its
            # parent). It does not get submitit's preemption signal, which SLURM sends to every
            # process of the job: this worker handles it (`checkpoint`), stopping the child first.
            env = {**os.environ, interrupts.LAUNCHER_PID: str(os.getpid())}
            with _only_blocked(_preemption_signal()):
                self._child = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                # poll, never wait(): `checkpoint` runs in a signal handler on this thread, and
                # Popen.wait() would hold the lock its own polling needs.
                while (code := self._child.poll()) is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:  # Ray's cancel of this task
                self.stop()
                raise
        return code

    def stop(self) -> None:
        """SIGINT (training saves its current epoch and exits), SIGKILL after the grace time."""
        child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if child.poll() is None:
            child.kill()
            while child.poll() is None:
                time.sleep(0.1)

    def checkpoint(self, *args: Any) -> Any:
        """submitit, on preemption or near the time limit: stop training cleanly and requeue this
        same command, which resumes from the checkpoint just saved."""
        import submitit

        self.stop()
        return submitit.helpers.DelayedSubmission(self, *args)


def _slurm_where() -> str:
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID")
    return f"slurm job {job_id} on {socket.gethostname()}"


def _preemption_signal() -> signal.Signals:
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


@contextlib.contextmanager
def _only_blocked(signum: signal.Signals) -> Iterator[None]:
    """While a child is started, this thread blocks exactly `signum`: the child inherits the mask
    (a blocked signal stays blocked across exec), so it never gets `signum` and does get every
    other signal, whatever its parent blocks (a Ray worker blocks SIGINT, for one)."""
    previous = signal.pthread_sigmask(signal.SIG_SETMASK, {signum})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ray_task(command: RunCommand) -> int:
    return command(f"ray task on {socket.gethostname()}")


def note(log_path: str, text: str) -> None:
    """A line of the launcher's in a run's launch.log, where its log tail will show it."""
    with open(log_path, "a") as f:
        f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def run_log_path(run: Run) -> str:
    from autoencoders import launch

    return os.path.join(run.workdir, launch.LAUNCH_LOG)


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------


class RayBackend:
    """One Ray task per run, `num_cpus` / `num_gpus` each, on the cluster at `address`, else on
    a local one started for this launch (no dashboard) and stopped after it. Usage statistics
    are off (RAY_USAGE_STATS_ENABLED=0). A task is not retried: one whose worker dies is a failed
    run, as with SLURM. Ctrl-C (or SIGTERM) cancels the tasks: each stops its training with
    SIGINT, which saves its epoch."""

    def __init__(
        self,
        address: str = "",
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        grace_seconds: float = 20.0,
        poll_seconds: float = 0.5,
    ):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before ray is imported, and for its nodes
        import ray

        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
        try:
            return self._run(ray, runs)
        finally:
            ray.shutdown()

    def _run(self, ray: Any, runs: Sequence[Run]) -> list[Outcome]:
        from autoencoders import launch

        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(_ray_task)
        cwd, start = os.getcwd(), time.monotonic()
        pending = {}
        for run in runs:
            command = RunCommand(run.argv, run_log_path(run), cwd, self.grace_seconds)
            pending[task.remote(command)] = run
            print(f"[{run.id}] submitted {run.name} as a Ray task", flush=True)
        outcomes = []
        try:
            while pending:
                interrupts.check("with the tasks cancelled")  # a safe point
                done, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_seconds)
                for ref in done:
                    run, how = pending.pop(ref), ""
                    try:
                        code = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                        note(run_log_path(run), f"Ray task ended with no exit status: {reason}")
                        code, how = 1, f"Ray {type(e).__name__}"
                    outcome = launch.Outcome(
                        run, code, time.monotonic() - start, run_log_path(run), how
                    )
                    word = "finished" if outcome.ok else f"FAILED ({outcome.ended_as})"
                    print(f"[{run.id}] {word} {run.name} in {outcome.seconds:.0f} s", flush=True)
                    outcomes.append(outcome)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # KeyboardInterrupt in the task: `RunCommand.stop`
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=self.grace_seconds + 5)
            raise
        return outcomes
