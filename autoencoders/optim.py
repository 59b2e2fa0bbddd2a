"""Optimizers and learning-rate schedules from `config.optimizer` (optax), and the train state."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "iwae_stages")


@flax.struct.dataclass
class TrainState:
    """Everything a training step changes, and all a checkpoint holds. The optimizer itself is
    not state: it is rebuilt from the config and passed to each step (so a vmapped member can
    build its own from traced hyper-parameters)."""

    step: jax.Array
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))

    def apply_gradients(self, grads: Any, tx: optax.GradientTransformation) -> TrainState:
        updates, opt_state = tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state)


def check_config(opt_cfg) -> None:
    if opt_cfg.name not in OPTIMIZERS:
        raise ValueError(
            f"config.optimizer.name={opt_cfg.name!r}: must be one of {', '.join(OPTIMIZERS)}."
        )
    if opt_cfg.schedule not in SCHEDULES:
        raise ValueError(
            f"config.optimizer.schedule={opt_cfg.schedule!r}: one of {', '.join(SCHEDULES)}."
        )
    if not opt_cfg.learning_rate > 0:
        raise ValueError(f"config.optimizer.learning_rate={opt_cfg.learning_rate}: must be > 0.")
    for field in ("grad_clip_norm", "weight_decay", "warmup_epochs", "momentum", "eps"):
        if opt_cfg[field] < 0:
            raise ValueError(f"config.optimizer.{field}={opt_cfg[field]}: must be >= 0.")
    for field in ("b1", "b2"):
        if not 0 <= opt_cfg[field] < 1:
            raise ValueError(f"config.optimizer.{field}={opt_cfg[field]}: must be in [0, 1).")


def learning_rate_schedule(opt_cfg, steps_per_epoch: int, num_epochs: int) -> optax.Schedule:
    """Schedules are declared in epochs and converted to steps here."""
    lr = opt_cfg.learning_rate
    total = max(1, steps_per_epoch * num_epochs)
    if opt_cfg.schedule == "constant":
        return optax.constant_schedule(lr)
    if opt_cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=total)
    if opt_cfg.schedule == "warmup_cosine":
        warmup = int(opt_cfg.warmup_epochs * steps_per_epoch)
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, decay_steps=total)
    # iwae_stages (Burda et al. 2016): stage i = 0..7 trains 3^i epochs at lr·10^(−i/7).
    boundaries, epochs = {}, 0
    for i in range(1, 8):
        epochs += 3 ** (i - 1)
        boundaries[epochs * steps_per_epoch] = 10 ** (-1 / 7)
    return optax.piecewise_constant_schedule(lr, boundaries)


def make(opt_cfg, steps_per_epoch: int, num_epochs: int) -> optax.GradientTransformation:
    """The optimizer of `config.optimizer`; its learning rate is logged and injectable."""
    check_config(opt_cfg)
    return build(opt_cfg, steps_per_epoch, num_epochs)


def build(opt_cfg, steps_per_epoch: int, num_epochs: int) -> optax.GradientTransformation:
    """`make` without the checks: for a config holding traced hyper-parameters (vmapped training
    members, each checked beforehand), whose values Python cannot compare."""
    schedule = learning_rate_schedule(opt_cfg, steps_per_epoch, num_epochs)
    kwargs = {"eps": opt_cfg.eps} if opt_cfg.name in ("adam", "adamw") else {}
    if opt_cfg.name in ("adam", "adamw"):
        kwargs.update(b1=opt_cfg.b1, b2=opt_cfg.b2)
    if opt_cfg.name == "adamw":
        kwargs["weight_decay"] = opt_cfg.weight_decay
    if opt_cfg.name == "sgd":
        kwargs["momentum"] = opt_cfg.momentum or None
    factory = {
        "adam": optax.adam,
        "adamw": optax.adamw,
        "sgd": optax.sgd,
        "adagrad": optax.adagrad,
        "rmsprop": optax.rmsprop,
    }[opt_cfg.name]
    tx = optax.inject_hyperparams(factory)(learning_rate=schedule, **kwargs)
    chain = []
    if opt_cfg.grad_clip_norm:
        chain.append(optax.clip_by_global_norm(opt_cfg.grad_clip_norm))
    if opt_cfg.weight_decay and opt_cfg.name != "adamw":
        # L2 on the parameters = a Gaussian prior on them (Kingma & Welling's weight decay).
        chain.append(optax.add_decayed_weights(opt_cfg.weight_decay))
    return optax.chain(*chain, tx) if chain else tx


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate inside an `inject_hyperparams` state (searched through chains)."""
    for state in jax.tree.leaves(opt_state, is_leaf=lambda s: hasattr(s, "hyperparams")):
        if hasattr(state, "hyperparams"):
            return state.hyperparams["learning_rate"]
    return None
