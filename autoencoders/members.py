"""Vmapped members: `config.vmap` trains several settings of one run as one compiled program.

`config.vmap = {'seed': (0, 1, 2, 3), 'beta': (0.5, 1.0)}` trains every combination
(`sweeps.vmap_members`) together: the plain run's compiled epoch and evaluation (`epoch.py`),
vmapped over (state, key, hyper-parameters). A key is `seed`, or a float field named by its last
component (`beta` is model.beta, `learning_rate` optimizer.learning_rate), or by its path with `__`
for `.`. A seed gives a member its own root key; a float field reaches the model and the optimizer
as a traced value: inside the traced function they are rebuilt (at trace time, once) from a copy of
the config that holds the tracer. Each member writes what a separate run with its settings writes
into <workdir>/members/<name>/ (config.json without vmap, metrics.jsonl, checkpoints), and equals
that run up to float round-off. Shape-changing settings (latent size, widths) and fields used as
Python numbers (e.g. a weight decay of 0 that drops a transform) stay outer sweep axes.

`program` builds what the training loop runs and `MemberDirs` fans the loop's writes out to the
members' directories, so `training.train_and_evaluate` runs members with the same loop as a
plain run.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from autoencoders import checkpoints, epoch, models, optim, parallel, sweeps
from autoencoders import workdir as workdirs

Array = jax.Array


def vmap_fields(config) -> dict[str, str]:
    """config.vmap's keys -> the config fields they set; errors for anything not vmappable."""
    flat = {
        k: v for k, v in workdirs.flatten(config.to_dict()).items() if not k.startswith("vmap.")
    }
    fields = {}
    for key in (config.get("vmap") or {}).keys():  # noqa: SIM118 - a ConfigDict
        if key == "seed":
            fields[key] = key
            continue
        if "__" in key:
            matches = [key.replace("__", ".")] if key.replace("__", ".") in flat else []
        else:
            matches = [f for f in flat if f.rsplit(".", 1)[-1] == key]
        if len(matches) != 1:
            raise ValueError(
                f"config.vmap key {key!r} matches {matches or 'no field'}: name a float field by "
                "its last component (beta, learning_rate) or its path with '__' (model__beta)."
            )
        if not isinstance(flat[matches[0]], float):
            raise ValueError(
                f"config.vmap key {key!r}: config.{matches[0]} is not a float. Only seeds and "
                "float hyper-parameters are vmapped; make other settings outer sweep axes."
            )
        fields[key] = matches[0]
    return fields


def _set_field(config, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def member_config(config, member: dict[str, Any]) -> ml_collections.ConfigDict:
    """One vmapped member's config: exactly what a separate run with its settings would use."""
    fields = vmap_fields(config)
    member_cfg = copy.deepcopy(config)
    with member_cfg.unlocked():
        member_cfg.vmap = ml_collections.ConfigDict()
        for key, value in member.items():
            _set_field(member_cfg, fields[key], int(value) if key == "seed" else float(value))
    return member_cfg


def vmapped(config) -> bool:
    """Whether `config.vmap` asks for members."""
    return bool(sweeps.vmap_members(config.get("vmap")))


def member_configs(config) -> list[ml_collections.ConfigDict]:
    """Every member's config (none for a plain run)."""
    return [member_config(config, m) for m in sweeps.vmap_members(config.get("vmap"))]


def write_configs(config, workdir: str, allow_config_change: bool) -> None:
    """Each member's config.json in its own directory (`workdir.write_or_check_config`)."""
    for member in sweeps.vmap_members(config.get("vmap")):
        member_dir = workdirs.member_workdir(workdir, member)
        os.makedirs(member_dir, exist_ok=True)
        workdirs.write_or_check_config(
            member_config(config, member), member_dir, allow_config_change
        )


def _traced_config(config, fields: dict[str, str], hparams: dict[str, Array]):
    """A copy of `config` holding traced hyper-parameters; built inside jit/vmap only."""
    traced = copy.deepcopy(config)
    with traced.unlocked(), traced.ignore_type():
        for key, value in hparams.items():
            _set_field(traced, fields[key], value)
    return traced


def unstack(tree: Any, n: int) -> list[Any]:
    return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(n)]


def stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def member_mesh(config, num_members: int) -> parallel.Mesh | None:
    """Members, not minibatches, are spread over the local devices (when they divide evenly)."""
    mesh = parallel.local_mesh(config)
    return mesh if mesh is not None and num_members % mesh.size == 0 else None


@dataclasses.dataclass(frozen=True)
class Program:
    """The members' initial states and compiled functions; every array has a leading member
    axis. The same signatures as the plain run's (`epoch.make_train_epoch`, `make_evaluate`)."""

    state: Any
    train_epoch: Any  # (state, images, labels, keys) -> (state, metrics)
    evaluate: Any  # (params, images, labels, keys) -> metrics
    train_key: Array  # (members,) keys
    eval_key: Array


def program(
    config,
    spec,
    steps_per_epoch: int,
    example,
    context,
    salts,
    x_mean: np.ndarray | None = None,
    compiler_options: Mapping[str, str] | None = None,
) -> Program:
    """Vmapped init, epoch and evaluation of every member (`salts`: init, train, eval); each
    member's decoder starts at `x_mean` where given (`Model.start_at_data_mean`); the epoch and
    evaluation are compiled with XLA's `compiler_options` (`cpu_matmuls`)."""
    members = sweeps.vmap_members(config.get("vmap"))
    mesh = member_mesh(config, len(members))
    num_epochs = config.train.num_epochs
    fields = vmap_fields(config)
    hparams = {
        k: jnp.asarray([float(m[k]) for m in members], jnp.float32) for k in fields if k != "seed"
    }
    roots = jnp.stack([jax.random.key(int(m.get("seed", config.seed))) for m in members])

    def build(hp):
        traced = _traced_config(config, fields, hp)
        tx = optim.build(traced.optimizer, steps_per_epoch, num_epochs)
        return traced, models.make(traced, spec), tx

    def init(root, hp):
        _, model, tx = build(hp)
        state = model.init_state(jax.random.fold_in(root, salts[0]), example, tx)
        return state if x_mean is None else model.start_at_data_mean(state, x_mean)

    def train_epoch(state, images, labels, key, hp):
        traced, model, tx = build(hp)
        run_epoch = epoch.make_train_epoch(
            model, tx, traced, steps_per_epoch, context, compiled=False
        )
        return run_epoch(state, images, labels, key)

    def evaluate(params, images, labels, key, hp):
        traced, model, _ = build(hp)
        return epoch.make_evaluate(model, traced, compiled=False)(params, images, labels, key)

    members_axis = (0, None, None, 0, 0)  # state/params, images, labels, key, hyper-parameters
    jit = functools.partial(jax.jit, compiler_options=compiler_options)
    train_all = jit(jax.vmap(train_epoch, in_axes=members_axis), donate_argnums=0)
    evaluate_all = jit(jax.vmap(evaluate, in_axes=members_axis))
    hparams = parallel.split_leading_axis(hparams, mesh)
    state = jax.jit(jax.vmap(init))(roots, hparams)
    keys = [jax.vmap(lambda r, s=s: jax.random.fold_in(r, s))(roots) for s in salts[1:]]
    train_key, eval_key = parallel.split_leading_axis(keys, mesh)
    return Program(
        state=state,
        train_epoch=lambda state, images, labels, keys: train_all(
            state, images, labels, keys, hparams
        ),
        evaluate=lambda params, images, labels, keys: evaluate_all(
            params, images, labels, keys, hparams
        ),
        train_key=train_key,
        eval_key=eval_key,
    )


class MemberDirs:
    """The members' run directories behind one `workdir.RunDir`-like face: the training loop
    writes stacked values, each member's directory gets its own slice."""

    def __init__(self, workdir: str, config):
        self.members = sweeps.vmap_members(config.get("vmap"))
        self.mesh = member_mesh(config, len(self.members))
        self.dirs = []
        try:
            for member in self.members:
                member_dir = workdirs.member_workdir(workdir, member)
                self.dirs.append(workdirs.RunDir(member_dir, config, sweeps.run_name(member)))
        except BaseException:
            self.close()
            raise

    def restore(self, state: Any) -> tuple[Any, int]:
        """Members resume together, from the newest epoch every member saved and can restore
        (a member's damaged checkpoint is set aside by `workdir.RunDir.restore_epoch`); their
        later checkpoints are redone."""
        states = unstack(state, len(self.dirs))
        for d in self.dirs:
            d.damaged = checkpoints.set_aside_uncommitted(d.manager)
        while start_epoch := max(
            set.intersection(*(d.saved_epochs() for d in self.dirs)), default=0
        ):
            restored = [
                d.restore_epoch(s, start_epoch) for d, s in zip(self.dirs, states, strict=True)
            ]
            if all(r is not None for r in restored):
                state = stack(restored)
                break
        for d in self.dirs:
            d.drop_after(start_epoch)
        return parallel.split_leading_axis(state, self.mesh), start_epoch

    def _per_member(self, tree: Any) -> list[tuple[workdirs.RunDir, Any]]:
        return list(zip(self.dirs, unstack(tree, len(self.dirs)), strict=True))

    def start(self, state: Any, start_epoch: int, **fields: Any) -> None:
        for d, member_state in self._per_member(state):
            d.start(member_state, start_epoch, **fields)

    def write_epoch(self, epoch_number: int, step: Array, rows: dict, **kwargs: Any) -> None:
        for d, (member_step, member_rows) in self._per_member((step, rows)):
            d.write_epoch(epoch_number, member_step, member_rows, **kwargs)

    def save(self, epoch_number: int, state: Any) -> None:
        for d, member_state in self._per_member(state):
            d.save(epoch_number, member_state)

    @property
    def final(self) -> dict[str, float]:
        return {f"{d.name}/{k}": v for d in self.dirs for k, v in d.final.items()}

    def close(self) -> None:
        for d in self.dirs:
            d.close()
