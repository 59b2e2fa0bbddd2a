"""The run directory: the one place that knows what a run writes where, and how to read it back.

A workdir holds `config.json` (the resolved config), `metrics.jsonl` and `tensorboard/` (see
`metrics.py`), `checkpoints/<epoch>/` (Orbax; one that does not restore is moved to
`checkpoints_damaged/<epoch>/` when the run resumes), `log.txt`, `train.lock` while a run trains in
it, and after evaluation `eval.json` and `figures/`. A run with vmapped members (`config.vmap`) also
has one such directory per member under `members/<name>/`. `RunDir` is an open run directory
(checkpoints and metrics) as training writes it; `restore_params` reads a trained model back.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: runs are not locked (see `lock`)
    fcntl = None

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp

from autoencoders import checkpoints, data, metrics, models, optim, parallel, sweeps

CONFIG_FILE = "config.json"
# What every config.json holds (`configs.common.base_config`): readers index these sections.
CONFIG_SECTIONS = ("model", "likelihood", "network", "data", "optimizer", "train", "checkpoint")
METRICS_FILE = metrics.METRICS_FILE
LOCK_FILE = "train.lock"
LOG_FILE = "log.txt"
EVAL_FILE = "eval.json"
# The density part's per-image values (`evaluation.read_per_image`), beside eval.json.
PER_IMAGE_FILE = "eval_per_image.npz"
FIGURES_DIR = "figures"
CHECKPOINTS_DIR = checkpoints.CHECKPOINTS_DIR
MEMBERS_DIR = "members"


# ---------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def config_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """A config as training writes it to config.json."""
    return json.loads(config.to_json_best_effort())


# Changing these leaves every result already written, and every later one, as they would be:
# how often to evaluate and to checkpoint, and how many checkpoints to keep.
PERIODIC_FIELDS = ("train.eval_every", "checkpoint.every_epochs", "checkpoint.max_to_keep")
# Learning-rate schedules that do not depend on the number of epochs (more epochs extend them).
SCHEDULES_WITHOUT_LENGTH = ("constant", "iwae_stages")


def changes_needing_permission(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The flattened fields that differ between two configs, except those a resumed run may
    change without --allow_config_change: `PERIODIC_FIELDS`, and more epochs under a schedule
    that does not depend on their number (the longer run equals a fresh run of that length)."""
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    longer = (
        isinstance(old.get("train.num_epochs"), int)
        and isinstance(new.get("train.num_epochs"), int)
        and new["train.num_epochs"] > old["train.num_epochs"]
        and new.get("optimizer.schedule") in SCHEDULES_WITHOUT_LENGTH
    )
    free = set(PERIODIC_FIELDS) | ({"train.num_epochs"} if longer else set())
    return [k for k in diff if k not in free]


def added_since(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `new` that a config written before they existed (`old`) lacks, at their
    default (`configs.common.base_config`, or the family's `added_fields`): such a run was
    trained with that default."""
    from configs import common  # noqa: PLC0415 - the defaults live with the configs

    defaults = flatten(config_json(common.base_config()))
    family = new.get("model.family")
    if family in models.FAMILIES:
        defaults.update(models.FAMILIES[family].added_fields)
    return {k: defaults[k] for k in new.keys() - old.keys() if k in defaults}


def with_added_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A flattened config.json `old` with the fields of `new` added since, at their defaults."""
    return {**added_since(old, new), **old}


def same_run_config(saved: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    """Whether a run's config.json (`saved`) holds `config` (both as config.json writes them),
    counting fields added since it was written at the value it was trained with."""
    old, new = flatten(saved), flatten(config)
    return with_added_fields(old, new) == new


def hparams(config) -> dict[str, bool | int | float | str]:
    """The config flattened (`model.latent_dim`, ...) as TensorBoard's HParams dashboard takes
    it: numbers, booleans and text (tuples and the like as their JSON)."""
    return {
        k: v if isinstance(v, bool | int | float | str) else json.dumps(v)
        for k, v in flatten(config_json(config)).items()
    }


def config_changes(config, workdir: str, allow_config_change: bool) -> list[str] | None:
    """The fields in which `config` differs from the run in `workdir` (None: no run there yet);
    a ValueError naming those of `changes_needing_permission` unless `allow_config_change`.
    Reads only: training calls it before it takes the workdir's lock, so a refused run changes
    nothing."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    old, new = flatten(read_config_json(path)), flatten(config_json(config))
    old = with_added_fields(old, new)
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    refused = changes_needing_permission(old, new)
    if refused and not allow_config_change:
        changes = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in refused)
        raise ValueError(
            f"{workdir} holds a run with a different config ({changes}): use a new "
            "--workdir, or pass --allow_config_change to resume this run with the new config."
        )
    return diff


def write_or_check_config(config, workdir: str, allow_config_change: bool) -> None:
    """Writes workdir/config.json; on resume, refuses a different config unless allowed."""
    write_config(config, workdir, config_changes(config, workdir, allow_config_change))


def write_config(config, workdir: str, changes: list[str] | None) -> None:
    """Writes workdir/config.json, given `config_changes`: for a new run, or for a changed one
    (the old file kept as config.<time>.json); an unchanged one is left as it is. Process 0 of a
    multi-process run writes it for all."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not parallel.is_primary():
        return
    if changes is not None:
        if not changes:
            return
        logging.warning("Resuming with a changed config: %s", ", ".join(changes))
        os.replace(path, os.path.join(workdir, f"config.{int(time.time())}.json"))
    with open(path, "w") as f:
        json.dump(config_json(config), f, indent=2)


def read_json(path: str) -> Any:
    """A JSON file's contents; a damaged file is a ValueError that names it."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}).") from None


def read_record(path: str) -> dict[str, Any]:
    """A JSON object a step wrote atomically (eval.json, measures.json); {} while it is not
    written yet. A damaged or non-object file is a ValueError that names it."""
    if not os.path.exists(path):
        return {}
    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a JSON object; delete it to recompute it.")
    return record


def read_config_json(path: str) -> dict[str, Any]:
    """A run's config.json; a ValueError naming it unless it is a JSON object with a run's
    sections (`CONFIG_SECTIONS`)."""
    config = read_json(path)
    if not isinstance(config, dict) or not all(
        isinstance(config.get(k), dict) for k in CONFIG_SECTIONS
    ):
        raise ValueError(
            f"{path} is not a run's config: a JSON object with {', '.join(CONFIG_SECTIONS)}."
        )
    return config


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config a run wrote to workdir/config.json."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {CONFIG_FILE} in {workdir}: not a run directory.")
    return ml_collections.ConfigDict(read_config_json(path))


# ---------------------------------------------------------------------------------------------
# A restored run
# ---------------------------------------------------------------------------------------------


def restore_params(workdir: str, epoch: int | None = None):
    """(config, model, params, epoch) of a run's checkpoint (the latest if `epoch` is None).

    For evaluation: the optimizer state is restored only to match the checkpoint's structure.
    """
    config = load_config(workdir)
    model = models.make(config, data.describe(config.data))
    tx = optim.make(config.optimizer, steps_per_epoch=1, num_epochs=config.train.num_epochs)
    example = {"x": jnp.zeros((1, *model.spec.shape)), "y": jnp.zeros((1,), jnp.int32)}
    state = model.init_state(jax.random.key(0), example, tx)
    manager = checkpoints.checkpoint_manager(workdir, config, create=False)
    try:
        if epoch is None:  # the newest that restores; damaged ones are left for training
            state, epoch, damaged = checkpoints.restore_newest(manager, state, move_damaged=False)
            if not epoch:
                restorable = " that restores" if damaged else ""
                raise FileNotFoundError(f"No checkpoint{restorable} in {manager.directory}.")
            return config, model, state.params, epoch
        saved = sorted(manager.all_steps())
        if epoch not in saved:
            raise FileNotFoundError(
                f"epoch {epoch}: no checkpoint of it in {manager.directory} (saved epochs: "
                f"{', '.join(map(str, saved))})."
            )
        state, why = checkpoints.try_restore(manager, state, epoch)
        if why:
            others = ", ".join(str(e) for e in saved if e != epoch) or "none"
            raise ValueError(
                f"epoch {epoch}: its checkpoint in {manager.directory} cannot be restored "
                f"({why}); other saved epochs: {others}."
            )
    finally:
        manager.close()
    return config, model, state.params, epoch


class RunDir:
    """An open run directory as training writes it: Orbax checkpoints, the metrics log, and a
    progress line per epoch. `final` holds the last values written, as `<split>/<name>`.

    In a multi-process run every process opens it with the same calls: all of them save and
    restore (Orbax's multi-host checkpoints), and process 0 alone writes the metrics log.
    """

    def __init__(self, workdir: str, config, name: str = ""):
        self.workdir = workdir
        self.name = name  # a vmapped member's name; '' for a plain run
        self.num_epochs = config.train.num_epochs
        self.manager = checkpoints.checkpoint_manager(workdir, config)
        self.log = metrics.MetricsLog(workdir) if parallel.is_primary() else None
        self.hparams = hparams(config)
        self.final: dict[str, float] = {}
        self.damaged: list[dict[str, Any]] = []  # checkpoints set aside by `restore`

    def start(self, state: Any, start_epoch: int, **fields: Any) -> None:
        """The metrics log's `start` event: where training (re)starts, `fields` (the headline
        metric and every metric's unit), the number of parameters and the checkpoints that
        were set aside as damaged (`damaged_checkpoints`, when there were any)."""
        num_params = sum(p.size for p in jax.tree.leaves(state.params))
        damaged = {"damaged_checkpoints": self.damaged} if self.damaged else {}
        if self.log is None:
            return
        self.log.event(
            "start",
            resumed_from_epoch=start_epoch,
            **fields,
            num_params=int(num_params),
            **damaged,
        )
        self.log.hparams(self.hparams)

    def write_epoch(
        self,
        epoch: int,
        step: Any,
        rows: Mapping[str, Mapping[str, Any] | None],
        *,
        shown: Mapping[str, tuple[str, ...]],
        seconds: float,
        compiling: float = 0.0,
    ) -> None:
        """Appends one metrics row per split (None: not evaluated this epoch) and logs a progress
        line with the `shown` metrics of each split, and the epoch's seconds of `compiling`."""
        line = f"epoch {epoch}/{self.num_epochs}" + (f" [{self.name}]" if self.name else "")
        for split, values in rows.items():
            if values is None:
                continue
            values = {k: float(v) for k, v in values.items()}
            if self.log is not None:
                self.log.write(step=int(step), epoch=epoch, split=split, values=values)
            self.final.update({f"{split}/{k}": v for k, v in values.items()})
            line += f"  {split}: " + "  ".join(
                f"{k} {values[k]:.3f}" for k in shown[split] if k in values
            )
        examples_per_sec = rows["train"]["examples_per_sec"]
        compiled = f" ({compiling:.1f} s of it compiling)" if compiling >= 0.05 else ""
        logging.info("%s  %.0f examples/s  %.1f s%s", line, examples_per_sec, seconds, compiled)

    def restore(self, state: Any) -> tuple[Any, int]:
        """(state, epoch) from the newest checkpoint that restores (`restore_newest`): newer,
        damaged ones are moved aside and recorded for `start`."""
        state, epoch, self.damaged = checkpoints.restore_newest(self.manager, state)
        return state, epoch

    def restore_epoch(self, state: Any, epoch: int) -> Any | None:
        """The state of `epoch`'s checkpoint, or None when it is damaged (then set aside and
        recorded for `start`). For vmapped members, which resume from one epoch together."""
        restored, why = checkpoints.try_restore(self.manager, state, epoch)
        if why:
            self.damaged.append(checkpoints.set_aside(self.manager, epoch, why))
        return restored

    def saved_epochs(self) -> set[int]:
        return set(self.manager.all_steps())

    def drop_after(self, epoch: int) -> None:
        """Deletes the checkpoints after `epoch`: a vmapped member's, past the epoch that all
        members resume from (a sibling's was damaged, or a kill came between the members'
        saves). Orbax saves only steps after the latest; the resumed run redoes them exactly."""
        for step in sorted(s for s in self.manager.all_steps() if s > epoch):
            logging.info("%s: deleting the checkpoint of epoch %d, to redo it.", self.name, step)
            self.manager.delete(step)

    def save(self, epoch: int, state: Any) -> None:
        self.manager.save(epoch, args=ocp.args.StandardSave(state))

    def close(self) -> None:
        try:
            self.manager.wait_until_finished()
            self.manager.close()
        finally:
            if self.log is not None:
                self.log.close()


# ---------------------------------------------------------------------------------------------
# Vmapped members' directories, and whether a run is finished
# ---------------------------------------------------------------------------------------------


def member_workdir(workdir: str, member: Mapping[str, Any]) -> str:
    return os.path.join(workdir, MEMBERS_DIR, sweeps.run_name(member))


def result_dirs(config: Mapping[str, Any], workdir: str) -> list[str]:
    """The directories that hold a run's results: the workdir, or one per vmapped member."""
    members = sweeps.vmap_members(config.get("vmap"))
    return [member_workdir(workdir, m) for m in members] if members else [workdir]


def is_complete(config: Mapping[str, Any], workdir: str) -> bool:
    """True when the final epoch's evaluation row and checkpoint are written."""
    num_epochs = config["train"]["num_epochs"]
    metrics_path = os.path.join(workdir, METRICS_FILE)
    final = os.path.join(workdir, CHECKPOINTS_DIR, str(num_epochs))
    if not os.path.exists(os.path.join(final, ocp.path.atomicity.COMMIT_SUCCESS_FILE)):
        return False  # Orbax's commit marker: the last file of a complete checkpoint
    if not os.path.exists(metrics_path):
        return False
    return num_epochs in metrics.latest_by_epoch(metrics_path, config["data"]["eval_split"])


# ---------------------------------------------------------------------------------------------
# The lock and the log file
# ---------------------------------------------------------------------------------------------


class WorkdirInUse(RuntimeError):
    """Another training run holds the workdir's lock."""


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
    """An exclusive lock on `workdir` while a run trains in it (`LOCK_FILE`, flock).

    A second run started on the same workdir (a re-submitted job, a typo in a sweep) stops at once
    with `WorkdirInUse` instead of interleaving its checkpoints and metrics with the first's. The
    operating system drops the lock when the holder exits, so a crash or kill leaves nothing to
    clean up and the next run resumes. Without flock (Windows, some cluster file systems) runs
    are not locked, and a warning says so.

    In a multi-process run process 0 holds it for all (any other run on the workdir has a process
    0 that tries it); every process learns whether it got it (`parallel.agree`), so a refused run
    stops all its processes at once instead of leaving some waiting for the others.
    """
    with contextlib.ExitStack() as stack:
        refused = None
        if parallel.is_primary():
            f = stack.enter_context(open(os.path.join(workdir, LOCK_FILE), "a+"))
            try:
                _claim(f, workdir)
            except WorkdirInUse as e:
                refused = e
            except OSError as e:
                logging.warning("Training in %s without a workdir lock: %s", workdir, e)
        if not parallel.agree(refused is None):
            raise refused or WorkdirInUse(
                f"workdir {workdir!r} is in use by another training run (process 0 of this run "
                "could not lock it)."
            )
        yield


def _claim(lock_file, workdir: str) -> None:
    """flock `lock_file` and write this process into it as the holder; `WorkdirInUse` when
    another process holds it, OSError where flock is unavailable."""
    if fcntl is None:
        raise OSError("fcntl is not available on this platform")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip() or "holder unknown"
        raise WorkdirInUse(
            f"workdir {workdir!r} is in use by another training run ({holder}); wait for it "
            "to finish, or choose another --workdir."
        ) from None
    lock_file.seek(0)
    lock_file.truncate()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lock_file.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
    lock_file.flush()


class QuietLibraries(logging.Filter):
    """Drops INFO chatter from Orbax and TFDS (dozens of lines per checkpoint) and JAX's search
    for backends ("Unable to initialize backend 'tpu'" on every machine without one); keeps
    warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = any(
            lib in record.pathname for lib in ("orbax", "tensorflow_datasets", "xla_bridge")
        )
        return record.levelno >= logging.WARNING or not noisy


@contextlib.contextmanager
def file_log(workdir: str) -> Iterator[None]:
    """The run's log lines also go to workdir/log.txt (library chatter filtered out), process
    0's in a multi-process run."""
    if not parallel.is_primary():
        yield
        return
    handler = logging.FileHandler(os.path.join(workdir, LOG_FILE))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(QuietLibraries())
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
