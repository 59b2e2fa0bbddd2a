"""Sweeps, declared: many runs of one config file, built with small combinators and expanded into
training commands. This is what config files import; it spawns nothing and parses no flags
(`launch.py` runs the commands, `results.py` reads what they wrote).

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
`vmap_members` expands a run's `config.vmap` into its members with the same combinators.

Expanding. `expand` turns a sweep into `Run`s. A run's id is its position in the documented order
above, so ids are stable across calls (and usable as array-job indices); its workdir name is
made from its own overrides only, keys sorted (`latent_dim=2,likelihood=bernoulli`), so reordering
axes or adding values to an axis finds the same workdirs again. Each run is one
`python -m experiments.train --config=<file>:<args> --workdir=<sweep_dir>/<name> --config.k=v ...`
command: config arguments join the config argument string, field overrides become `--config.k=v`
flags, and the sweep command's own `--config.k=v` flags follow, applied to every run. `manifest`
is the JSON record of an expanded sweep.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import importlib.util
import itertools
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ARG_PREFIX = "arg:"

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


def vmap_members(vmap: Mapping[str, Sequence[Any]] | None) -> list[Overrides]:
    """The members of a vmapped run: every combination of the non-empty `config.vmap` entries.

    Keys are taken in sorted order, so a config and its config.json give the same members.
    """
    axes = [axis(k, list(v)) for k, v in sorted((vmap or {}).items()) if len(v)]
    return list(product(*axes)) if axes else []


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
