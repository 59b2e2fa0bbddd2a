"""Sweeps: many runs of one config file, declared with small combinators, launched by a backend.

Declaring. A config file declares named sweeps next to `get_config` as `get_sweep(name)`, which
returns a `Sweep`: a tuple of override dicts, one per run, built from

    axis(key, values)     one run per value: ({key: v0}, {key: v1}, ...)
    arg(name, values)     an axis over a config argument (`arg:<name>`): e.g. a likelihood preset,
                          which sets several fields at once through `get_config`
    point(overrides)      a single run
    product(a, b, ...)    every combination; the last argument varies fastest (itertools.product)
    zip(a, b, ...)        pairs runs up position by position (equal lengths)
    chain(a, b, ...)      a's runs, then b's, ...

and, optionally, `fixed` overrides that every run gets but that do not name runs (the dataset, an
architecture). A key is a config field (`model.latent_dim`) or a config argument (`arg:likelihood`).

Expanding. `expand` turns a sweep into `Run`s. A run's id is its position in the documented order
above, so ids are stable across calls (and usable as array-job indices); its workdir name is
made from its own overrides only, keys sorted (`latent_dim=2,likelihood=bernoulli`), so reordering
axes or adding values to an axis finds the same workdirs again. Each run is one
`python -m experiments.train --config=<file>:<args> --workdir=<sweep_dir>/<name> --config.k=v ...`
command: config arguments join the config argument string, field overrides become `--config.k=v`
flags, and the sweep command's own `--config.k=v` flags follow, applied to every run.

Launching. `launch` writes `<sweep_dir>/manifest.json`, skips finished runs (`status`), and hands
the rest to a `Backend`. `LocalBackend` runs them as parallel child processes on this machine; a
cluster backend submits the same commands as jobs.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import ml_collections
from absl import flags as absl_flags
from ml_collections import config_flags

from autoencoders import metrics

ARG_PREFIX = "arg:"
MANIFEST = "manifest.json"
LAUNCH_LOG = "launch.log"  # a run's stdout and stderr, appended on every launch

Overrides = dict[str, Any]
Sweep = tuple[Overrides, ...]


# ---------------------------------------------------------------------------------------------
# Declaring: combinators over tuples of override dicts
# ---------------------------------------------------------------------------------------------


def axis(key: str, values: Sequence[Any]) -> Sweep:
    """One run per value of `key` (a config field, or `arg:<name>` for a config argument)."""
    if not values:
        raise ValueError(f"axis({key!r}): no values.")
    return tuple({key: v} for v in values)


def arg(name: str, values: Sequence[Any]) -> Sweep:
    """An axis over the config argument `name` (e.g. `likelihood`, a preset of several fields)."""
    return axis(ARG_PREFIX + name, values)


def point(overrides: Mapping[str, Any]) -> Sweep:
    """A single run with these overrides."""
    return (dict(overrides),)


def _merge(parts: Sequence[Mapping[str, Any]]) -> Overrides:
    merged: Overrides = {}
    for part in parts:
        clash = merged.keys() & part.keys()
        if clash:
            raise ValueError(f"Sweep sets {', '.join(sorted(clash))} twice in one run.")
        merged.update(part)
    return merged


def product(*sweeps: Sweep) -> Sweep:
    """Every combination of runs; the last sweep varies fastest."""
    return tuple(_merge(parts) for parts in itertools.product(*sweeps))


def zip(*sweeps: Sweep) -> Sweep:  # shadows the builtin on purpose: read as sweeps.zip
    """Run i of each sweep merged into one run; the sweeps must have equal lengths."""
    if len({len(s) for s in sweeps}) > 1:
        raise ValueError(f"sweeps.zip of unequal lengths {[len(s) for s in sweeps]}.")
    return tuple(_merge(parts) for parts in builtins.zip(*sweeps, strict=True))


def chain(*sweeps: Sweep) -> Sweep:
    """The runs of each sweep in turn."""
    return tuple(dict(run) for s in sweeps for run in s)


@dataclasses.dataclass(frozen=True)
class Declared:
    """What `get_sweep` returns: the runs, and overrides shared by all of them (not in names)."""

    runs: Sweep
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def declare(runs: Sweep, fixed: Mapping[str, Any] | None = None) -> Declared:
    return Declared(tuple(runs), dict(fixed or {}))


# ---------------------------------------------------------------------------------------------
# Expanding: runs, names, commands
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    id: int
    name: str  # the workdir's base name, from `overrides`
    overrides: Overrides  # what distinguishes this run (the sweep's point)
    workdir: str
    argv: tuple[str, ...]  # the training command


@dataclasses.dataclass(frozen=True)
class Plan:
    """An expanded sweep: everything the manifest records."""

    sweep: str
    config_file: str
    config_arg: str  # the config argument string without `sweep=NAME`
    fixed: Overrides
    global_flags: tuple[str, ...]  # the sweep command's --config.k=v flags, for every run
    sweep_dir: str
    runs: tuple[Run, ...]


def parse_config_spec(spec: str) -> tuple[str, str, str]:
    """`file.py:sweep=NAME,k=v` -> (file, NAME, "k=v"). `get_config` never sees `sweep=`."""
    config_file, _, config_arg = spec.partition(":")
    items = [item for item in config_arg.split(",") if item]
    names = [item.partition("=")[2] for item in items if item.startswith("sweep=")]
    if len(names) != 1 or not names[0]:
        raise ValueError(f"--config={spec!r}: name one sweep, e.g. {config_file}:sweep=NAME.")
    rest = ",".join(item for item in items if not item.startswith("sweep="))
    return config_file, names[0], rest


def load_sweep(config_file: str, name: str) -> Declared:
    """Calls `get_sweep(name)` of a config file (a plain tuple of runs is accepted too)."""
    module_spec = importlib.util.spec_from_file_location("sweep_config", config_file)
    if module_spec is None or not os.path.isfile(config_file):
        raise ValueError(f"No config file {config_file!r}.")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_sweep"):
        raise ValueError(f"{config_file} declares no sweeps (no get_sweep).")
    declared = module.get_sweep(name)
    return declared if isinstance(declared, Declared) else declare(declared)


def short_key(key: str) -> str:
    """`model.latent_dim` -> `latent_dim`, `arg:likelihood` -> `likelihood`: names and headers."""
    return key.removeprefix(ARG_PREFIX).rsplit(".", 1)[-1]


def value_text(value: Any) -> str:
    """A value as names and tables show it: (500, 500) -> 500x500, True -> true."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "x".join(value_text(v) for v in value)
    return str(value)


def run_name(overrides: Mapping[str, Any], max_len: int = 100) -> str:
    """A readable, filesystem-safe name made from the overrides alone (keys sorted)."""
    if not overrides:
        return "base"
    shorts = [short_key(k) for k in overrides]
    # The full key where two overrides share a last component (encoder.hidden, decoder.hidden).
    keys = {
        k: (s if shorts.count(s) == 1 else k.removeprefix(ARG_PREFIX))
        for k, s in builtins.zip(overrides, shorts, strict=True)
    }
    text = ",".join(
        f"{keys[k]}={value_text(overrides[k])}" for k in sorted(overrides, key=keys.get)
    )
    text = re.sub(r"[^A-Za-z0-9._=+,-]", "_", text)
    if len(text) > max_len:  # keep it unique: a digest of the whole text
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[: max_len - 9]}-{digest}"
    return text


def flag_value(value: Any) -> str:
    """The `--config.k=<text>` that config_flags parses back into `value`."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        value = tuple(value)
    return repr(value)


def _split_overrides(overrides: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(config arguments, --config.k=v flags)."""
    args = {
        k.removeprefix(ARG_PREFIX): str(v) for k, v in overrides.items() if k.startswith(ARG_PREFIX)
    }
    flags = [
        f"--config.{k}={flag_value(v)}"
        for k, v in overrides.items()
        if not k.startswith(ARG_PREFIX)
    ]
    return args, flags


def _arg_keys(config_arg: str) -> set[str]:
    return {item.partition("=")[0] for item in config_arg.split(",") if item}


def train_argv(
    config_file: str, config_arg: str, workdir: str, flags: Sequence[str], *, python: str
) -> tuple[str, ...]:
    config = f"{config_file}:{config_arg}" if config_arg else config_file
    return (python, "-m", "experiments.train", f"--config={config}", f"--workdir={workdir}", *flags)


def expand(
    declared: Declared,
    *,
    sweep: str,
    config_file: str,
    config_arg: str,
    sweep_dir: str,
    global_flags: Sequence[str] = (),
    train_flags: Sequence[str] = (),
    python: str = sys.executable,
) -> Plan:
    """The runs of a declared sweep, in declaration order (ids 0, 1, ...).

    The command line (`config_arg`, `global_flags`) overrides the sweep's fixed settings; it
    cannot override what the sweep varies. `train_flags` (e.g. --allow_config_change) are
    passed to every training command as they are.
    """
    command_keys = {f.removeprefix("--config.").partition("=")[0] for f in global_flags}
    command_keys |= {ARG_PREFIX + k for k in _arg_keys(config_arg)}
    fixed = {k: v for k, v in declared.fixed.items() if k not in command_keys}
    runs, seen = [], {}
    for run_id, overrides in enumerate(declared.runs):
        clash = command_keys & overrides.keys()
        if clash:
            raise ValueError(
                f"{sorted(clash)[0]} is what sweep {sweep!r} varies; it cannot also be set on "
                "the command line."
            )
        name = run_name(overrides)
        if name in seen:
            raise ValueError(f"Runs {seen[name]} and {run_id} have the same overrides ({name}).")
        seen[name] = run_id
        args, flags = _split_overrides(_merge([fixed, overrides]))
        workdir = os.path.join(sweep_dir, name)
        full_arg = ",".join([*filter(None, [config_arg]), *(f"{k}={v}" for k, v in args.items())])
        argv = train_argv(
            config_file, full_arg, workdir, [*flags, *global_flags, *train_flags], python=python
        )
        runs.append(Run(run_id, name, dict(overrides), workdir, argv))
    return Plan(
        sweep=sweep,
        config_file=config_file,
        config_arg=config_arg,
        fixed=fixed,
        global_flags=tuple(global_flags),
        sweep_dir=sweep_dir,
        runs=tuple(runs),
    )


def plan_from_command(
    config_spec: str, sweep_dir: str, global_flags: Sequence[str] = (), **kwargs: Any
) -> Plan:
    """The plan of `--config=<file>:sweep=NAME[,args] --sweep_dir=D --config.k=v ...`."""
    config_file, name, config_arg = parse_config_spec(config_spec)
    return expand(
        load_sweep(config_file, name),
        sweep=name,
        config_file=config_file,
        config_arg=config_arg,
        sweep_dir=sweep_dir,
        global_flags=global_flags,
        **kwargs,
    )


def manifest(plan: Plan) -> dict[str, Any]:
    """The JSON record of a plan; workdirs relative to the sweep dir, so it can move."""
    return {
        "sweep": plan.sweep,
        "config_file": plan.config_file,
        "config_arg": plan.config_arg,
        "fixed": plan.fixed,
        "global_flags": list(plan.global_flags),
        "runs": [
            {
                "id": r.id,
                "name": r.name,
                "workdir": os.path.relpath(r.workdir, plan.sweep_dir),
                "overrides": r.overrides,
                "command": list(r.argv[1:]),
            }
            for r in plan.runs
        ],
    }


def write_manifest(plan: Plan) -> str:
    os.makedirs(plan.sweep_dir, exist_ok=True)
    path = os.path.join(plan.sweep_dir, MANIFEST)
    with open(path + ".tmp", "w") as f:
        json.dump(manifest(plan), f, indent=2)
    os.replace(path + ".tmp", path)  # never a half-written manifest
    return path


def read_manifest(sweep_dir: str) -> dict[str, Any]:
    path = os.path.join(sweep_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {MANIFEST} in {sweep_dir}: run experiments.sweep first.")
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Run status: what a run's command would train, and whether its workdir already holds it
# ---------------------------------------------------------------------------------------------


def resolve_config(argv: Sequence[str]) -> ml_collections.ConfigDict:
    """The config a training command builds, parsed by the same config_flags code it uses."""
    args = ["resolve", *(a for a in argv if a.startswith("--config"))]
    values = absl_flags.FlagValues()
    # sys_argv: config_flags reads the --config.<field> overrides from it (default: sys.argv).
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=values, lock_config=True, sys_argv=args
    )
    try:
        values(args)
    except (absl_flags.Error, KeyError, AttributeError, TypeError) as e:
        # Unknown field (Key/AttributeError), wrong type, bad flag text: this run cannot start.
        raise ValueError(f"{type(e).__name__}: {e}") from None
    return values.config


def config_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """A config as training writes it to config.json."""
    return json.loads(config.to_json_best_effort())


def vmap_members(vmap: Mapping[str, Sequence[Any]] | None) -> list[Overrides]:
    """The members of a vmapped run: every combination of the non-empty `config.vmap` entries.

    Keys are taken in sorted order, so a config and its config.json give the same members.
    """
    axes = [axis(k, list(v)) for k, v in sorted((vmap or {}).items()) if len(v)]
    return list(product(*axes)) if axes else []


def member_workdir(workdir: str, member: Mapping[str, Any]) -> str:
    return os.path.join(workdir, "members", run_name(member))


def result_dirs(config: Mapping[str, Any], workdir: str) -> list[str]:
    """The directories that hold a run's results: the workdir, or one per vmapped member."""
    members = vmap_members(config.get("vmap"))
    return [member_workdir(workdir, m) for m in members] if members else [workdir]


def is_complete(config: Mapping[str, Any], workdir: str) -> bool:
    """True when the final epoch's evaluation row and checkpoint are written."""
    num_epochs = config["train"]["num_epochs"]
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isdir(os.path.join(workdir, "checkpoints", str(num_epochs))):
        return False  # Orbax renames a checkpoint to its step only once it is complete
    if not os.path.exists(metrics_path):
        return False
    return num_epochs in metrics.latest_by_epoch(metrics_path, config["data"]["eval_split"])


def status(run: Run) -> str:
    """`new` (nothing written), `finished`, `resume` (same config, not finished) or `changed`.

    Finished means: the workdir's config.json is the config this command builds now, and every
    result dir holds the final epoch's evaluation row and checkpoint. `changed` runs are
    launched anyway; training refuses them unless --allow_config_change.
    """
    expected = config_json(resolve_config(run.argv))  # raises ValueError for a bad override
    path = os.path.join(run.workdir, "config.json")
    if not os.path.exists(path):
        return "new"
    with open(path) as f:
        saved = json.load(f)
    if saved != expected:
        return "changed"
    done = all(is_complete(saved, d) for d in result_dirs(saved, run.workdir))
    return "finished" if done else "resume"


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    run: Run
    returncode: int  # 0: finished; non-zero: failed
    seconds: float
    log_path: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Backend(Protocol):
    """Runs training commands somewhere. `run` returns when every run has ended."""

    def run(self, runs: Sequence[Run]) -> list[Outcome]: ...


def log_tail(path: str, lines: int = 20) -> str:
    if not os.path.exists(path):
        return "(no log)"
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


@dataclasses.dataclass
class _Job:
    run: Run
    process: subprocess.Popen
    log: Any
    start: float


class LocalBackend:
    """Runs up to `workers` training processes at a time on this machine.

    Each child gets its own session, so Ctrl-C reaches only this process, which then stops the
    children by PID: SIGINT first (training's finally-blocks close the checkpoint manager), SIGKILL
    after `grace_seconds`. Whatever a child loses is its current epoch: it resumes next time.
    """

    def __init__(self, workers: int = 1, grace_seconds: float = 20.0, poll_seconds: float = 0.2):
        if workers < 1:
            raise ValueError(f"--workers={workers}: must be >= 1.")
        self.workers = workers
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.workers > 1:
            # JAX grabs 75% of an accelerator's memory per process; parallel runs must share it.
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return env

    def _start(self, run: Run) -> _Job:
        os.makedirs(run.workdir, exist_ok=True)
        log = open(os.path.join(run.workdir, LAUNCH_LOG), "a")  # noqa: SIM115 - closed in _end
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(run.argv)}\n")
        log.flush()
        process = subprocess.Popen(
            run.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            start_new_session=True,
        )
        print(f"[{run.id}] started {run.name} (pid {process.pid})", flush=True)
        return _Job(run, process, log, time.monotonic())

    def _end(self, job: _Job) -> Outcome:
        job.log.close()
        outcome = Outcome(
            job.run, job.process.returncode, time.monotonic() - job.start, job.log.name
        )
        word = "finished" if outcome.ok else f"FAILED (exit {outcome.returncode})"
        print(f"[{job.run.id}] {word} {job.run.name} in {outcome.seconds:.0f} s", flush=True)
        return outcome

    def _stop(self, jobs: Sequence[_Job]) -> None:
        for job in jobs:
            if job.process.poll() is None:
                os.kill(job.process.pid, signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        for job in jobs:
            try:
                job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(job.process.pid, signal.SIGKILL)
                job.process.wait()
            job.log.close()
            print(f"[{job.run.id}] stopped {job.run.name}; it resumes next time", flush=True)

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        pending, running, outcomes = list(runs), [], []
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    running.append(self._start(pending.pop(0)))
                for job in [j for j in running if j.process.poll() is not None]:
                    running.remove(job)
                    outcomes.append(self._end(job))
                time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self._stop(running)
            raise
        return outcomes


@dataclasses.dataclass(frozen=True)
class Summary:
    skipped: tuple[Run, ...]  # finished before this launch
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)


def select(plan: Plan, ids: Sequence[int] | None) -> tuple[Run, ...]:
    """The runs with these ids (all when None)."""
    if ids is None:
        return plan.runs
    unknown = set(ids) - {r.id for r in plan.runs}
    if unknown:
        raise ValueError(f"No runs with ids {sorted(unknown)} (ids 0..{len(plan.runs) - 1}).")
    return tuple(r for r in plan.runs if r.id in set(ids))


def launch(plan: Plan, backend: Backend, ids: Sequence[int] | None = None) -> Summary:
    """Writes the manifest, skips finished runs and runs the others on `backend`."""
    write_manifest(plan)
    runs = select(plan, ids)
    todo, skipped, unresolved = [], [], []
    for run in runs:
        try:
            state = status(run)
        except ValueError as e:  # a run whose overrides config_flags rejects
            unresolved.append(_record_failure(run, e))
            continue
        (skipped if state == "finished" else todo).append(run)
    for run in skipped:
        print(f"[{run.id}] finished earlier: {run.name}", flush=True)
    outcomes = backend.run(todo) if todo else []
    order = {r.id: i for i, r in enumerate(runs)}
    return Summary(
        tuple(skipped), tuple(sorted([*unresolved, *outcomes], key=lambda o: order[o.run.id]))
    )


def _record_failure(run: Run, error: Exception) -> Outcome:
    """A run that cannot start: its error goes to its log like a child's would."""
    os.makedirs(run.workdir, exist_ok=True)
    path = os.path.join(run.workdir, LAUNCH_LOG)
    with open(path, "a") as f:
        f.write(f"\n=== {' '.join(run.argv)}\nerror: {error}\n")
    print(f"[{run.id}] FAILED {run.name}: {error}", flush=True)
    return Outcome(run, 2, 0.0, path)
