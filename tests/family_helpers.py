"""Test utilities for the model families beyond AE/VAE: tiny configs from the shipped config files,
and random parameter trees."""

from __future__ import annotations

import importlib

import jax

from configs import common
from tests.helpers import tiny_config


def random_like(tree, key: jax.Array, scale: float = 1.0):
    """A tree of N(0, scale²) arrays shaped like `tree`."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef,
        [scale * jax.random.normal(k, v.shape, v.dtype) for v, k in zip(leaves, keys, strict=True)],
    )


def jitter(params, key: jax.Array, scale: float = 0.3):
    """`params` plus N(0, scale²) noise: random biases too (Flax starts them at 0), so no input
    maps to a degenerate all-zero output."""
    return jax.tree.map(lambda p, n: p + n, params, random_like(params, key, scale))


def tiny_family_config(config_name: str, arg: str = "", likelihood: str = "bernoulli", **overrides):
    """`tests.helpers.tiny_config` with the family and family fields of `configs/<config_name>.py`.

    The shipped config is built for the embedded digits; every `config.model` field it sets that
    differs from `common.base_config()` (the family's own fields, a β) is carried over, so tests
    exercise the shipped defaults at the tiny sizes. `overrides`: dotted keys -> values.
    """
    module = importlib.import_module(f"configs.{config_name}")
    shipped = module.get_config(",".join(filter(None, [arg, "data=digits"])))
    generic = common.base_config().model
    family_fields = {
        f"model.{k}": v
        for k, v in shipped.model.items()
        if k != "latent_dim" and (k not in generic or generic[k] != v)
    }
    return tiny_config(shipped.model.family, likelihood, **{**family_fields, **overrides})
