"""Checkpoints: Orbax's manager for a run's `checkpoints/<epoch>/`, and restoring the newest one
that restores.

A checkpoint is a step directory with Orbax's commit marker (`commit_success.txt`, written as the
last act of a save). `restore_newest` tries them newest first: one that restores neither as the
current state nor as the tree it was saved as is damaged — reported in one line, moved to
`checkpoints_damaged/<epoch>/` (never deleted) — and the next older one is tried; one that restores
as saved but not as the current state belongs to another model or optimizer, a ValueError.

In a multi-process run every process makes the same calls (Orbax's multi-host path: each saves and
restores, Orbax coordinates them); a damaged checkpoint is moved by process 0 between barriers, so
that every process has listed it before and finds it gone after.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from autoencoders import parallel

CHECKPOINTS_DIR = "checkpoints"
DAMAGED_DIR = "checkpoints_damaged"  # checkpoints that could not be restored, moved aside
READER_ATTEMPTS = 5  # a reader's tries when the training run deletes a step it listed


def checkpoint_manager(workdir: str, config, create: bool = True) -> ocp.CheckpointManager:
    """The run's Orbax manager; `create=False` to read a workdir and leave it as it is.

    A checkpoint is a step directory with Orbax's commit marker (`commit_success.txt`, written
    as the last act of a save): Orbax lists no other, and `restore_newest` sets the others aside.
    """
    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.checkpoint.max_to_keep,
        # Drops a save cut short by a kill; not a reader's job (training may be saving).
        cleanup_tmp_directories=create,
        create=create,
        step_name_format=ocp.step.standard_name_format(
            temporary_path_cls=ocp.path.atomicity.CommitFileTemporaryPath
        ),
    )
    directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS_DIR)
    attempt = 0
    while True:
        try:
            return ocp.CheckpointManager(directory, options=options)
        except ValueError as e:
            # A reader of a run that is training races its writer: Orbax lists the steps, then
            # reads each one's metadata, and `max_to_keep` may delete one in between.
            attempt += 1
            if create or "No step path found" not in str(e) or attempt == READER_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)


def restore_newest(
    manager: ocp.CheckpointManager, state: Any, *, move_damaged: bool = True
) -> tuple[Any, int, list[dict[str, Any]]]:
    """(state, epoch, damaged) from the newest checkpoint that restores, or (state, 0, damaged)
    when none does. Each one that does not, and each step directory without a commit marker, is
    reported in one log line, recorded in `damaged` and, with `move_damaged`, moved aside
    (`set_aside`). A checkpoint written for another model or optimizer is a ValueError."""
    damaged = set_aside_uncommitted(manager, move=move_damaged)
    steps = manager.all_steps()
    for _ in range(READER_ATTEMPTS):
        vanished = False
        for epoch in sorted(steps, reverse=True):
            restored, why = try_restore(manager, state, epoch)
            if not why:
                return restored, int(epoch), damaged
            if not move_damaged and not os.path.isdir(os.path.join(manager.directory, str(epoch))):
                vanished = True  # a reader's race: deleted by training's `max_to_keep`
                continue
            damaged.append(set_aside(manager, epoch, why, move=move_damaged))
        if not vanished:
            break
        steps = manager.all_steps(read=True)  # the newer ones training saved meanwhile
    return state, 0, damaged


def try_restore(manager: ocp.CheckpointManager, state: Any, epoch: int) -> tuple[Any, str]:
    """(`state` as `epoch`'s checkpoint holds it, ''), or (None, why) when the checkpoint is
    damaged: it does not restore even as the tree it was saved as. One that restores as saved but
    not as `state` was written for another model or optimizer: a ValueError saying so."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    _mute_failed_reads()  # before the restore: a failed read can be logged before it raises
    try:
        return manager.restore(epoch, args=ocp.args.StandardRestore(abstract)), ""
    except Exception as e:
        try:
            manager.restore(epoch, args=ocp.args.StandardRestore())  # the tree as saved
        except Exception:
            return None, _first_line(e)
        raise ValueError(
            f"The checkpoint of epoch {epoch} in {manager.directory} does not fit this config's "
            "model or optimizer (changed with --allow_config_change?). Use a new --workdir."
        ) from e


def _first_line(error: BaseException) -> str:
    """An error's innermost cause as `Kind: first line`, its middle cut to fit 240 characters."""
    while error.__cause__ is not None:
        error = error.__cause__
    lines = str(error).strip().splitlines() or [""]
    text = f"{type(error).__name__}: {lines[0]}"
    return text if len(text) <= 240 else f"{text[:150]} ... {text[-85:]}"


@functools.cache
def _mute_failed_reads() -> None:
    """After a failed restore, Orbax's reads still in flight fail later, in other threads or
    when collected, as pages of 'Exception ignored' tracebacks, although the failure is
    reported in one line. Those are dropped (a read that fails always fails its restore too)."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        read = getattr(unraisable.object, "__qualname__", "") == _ORBAX_READ
        closed = str(unraisable.exc_value) == "Event loop is closed"
        if not (read or closed):
            previous(unraisable)

    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(lambda record: _ORBAX_READ not in record.getMessage())


_ORBAX_READ = "_read_array_index_and_device_put"  # Orbax's coroutine that reads one array


def set_aside_uncommitted(
    manager: ocp.CheckpointManager, *, move: bool = True
) -> list[dict[str, Any]]:
    """`set_aside` for each step directory that Orbax does not list: no commit marker (a save
    that never completed, or a damaged checkpoint). Their records, oldest first."""
    listed, directory = set(manager.all_steps()), str(manager.directory)
    names = os.listdir(directory) if os.path.isdir(directory) else []
    steps = sorted(int(n) for n in names if n.isdigit() and str(int(n)) == n)
    why = f"no {ocp.path.atomicity.COMMIT_SUCCESS_FILE}, Orbax's mark of a complete save"
    return [set_aside(manager, s, why, move=move) for s in steps if s not in listed]


def set_aside(
    manager: ocp.CheckpointManager, epoch: int, why: str, *, move: bool = True
) -> dict[str, Any]:
    """Logs one line about the damaged checkpoint of `epoch` and, with `move`, renames it to
    `DAMAGED_DIR`/<epoch> beside the checkpoints (never deleted; `.1`, `.2`, ... when taken).
    Its record for the metrics' `start` event: epoch, error, and where it was moved."""
    directory = str(manager.directory)
    record: dict[str, Any] = {"epoch": int(epoch), "error": why}
    action = "skipped"
    if move:
        parallel.sync(f"checkpoint {epoch} seen by every process")
    if move and parallel.is_primary():
        target = os.path.join(os.path.dirname(directory), DAMAGED_DIR, str(epoch))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        suffix = 0
        while os.path.exists(target + (f".{suffix}" if suffix else "")):
            suffix += 1
        target += f".{suffix}" if suffix else ""
        os.rename(os.path.join(directory, str(epoch)), target)
        record["moved_to"] = os.path.relpath(target, os.path.dirname(directory))
        action = f"moved to {target}"
    if move:
        parallel.sync(f"checkpoint {epoch} moved aside")
        manager.reload()
    logging.warning(
        "The checkpoint of epoch %d in %s cannot be restored (%s); %s, falling back to an "
        "earlier one.",
        epoch,
        directory,
        why,
        action,
    )
    return record
