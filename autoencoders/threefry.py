"""A straight-line XLA:CPU lowering of JAX's Threefry-2x32 random-bit generator: the same bits.

Every random number in training (dynamic binarization, the reparameterised posterior sample, the
shuffles) comes from Threefry-2x32 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2,
3"): 20 rounds of add-rotate-xor in five groups of four, with a key injection after each group. On
CPU, JAX lowers those five groups as a rolled loop (`fori_loop`, to keep compile times short), which
XLA:CPU runs as a while loop of small kernels that copy their state each trip; on GPU and TPU it
emits them straight-line. `register_unrolled_cpu_lowering` gives CPU the straight-line form, one
fused elementwise kernel per draw. The hash is unchanged, so every number is bit-for-bit what the
rolled loop gives (`tests/test_threefry.py` checks Random123's known-answer vectors and a
comparison against JAX's own lowering in a fresh process); only the speed changes (measured in
docs/benchmarks.md).

Importing the library changes nothing: the entry points (`experiments.cli.start`, the sweep
launcher, `benchmarks.run`) and the test suite (`tests/conftest.py`) call
`register_unrolled_cpu_lowering()`. It goes through JAX APIs outside JAX's compatibility promise
(`jax.extend.random.threefry2x32_p`, `jax.interpreters.mlir`), so it is guarded: where they are
missing or have changed, it logs one warning and JAX keeps its own lowering. Set
AUTOENCODERS_ROLLED_THREEFRY=1 to keep JAX's rolled loop anyway (e.g. to compare speed or compile
times).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging
from jax import lax

# Rotation distances of the 20 rounds, alternating between two groups of four (Random123 R_32x2).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = np.uint32(0x1BD11BDA)  # Threefish's key-schedule constant
ROLLED_ENV = "AUTOENCODERS_ROLLED_THREEFRY"


def _rotate_left(x: jax.Array, distance: int) -> jax.Array:
    return lax.shift_left(x, np.uint32(distance)) | lax.shift_right_logical(
        x, np.uint32(32 - distance)
    )


def threefry2x32_unrolled(
    key1: jax.Array, key2: jax.Array, x1: jax.Array, x2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32, 20 rounds, as straight-line uint32 arithmetic (inputs broadcast together)."""
    keys = (key1, key2, key1 ^ key2 ^ _KEY_PARITY)
    x1, x2 = x1 + keys[0], x2 + keys[1]
    for group in range(5):
        for distance in _ROTATIONS[group % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, distance) ^ x1
        x1 = x1 + keys[(group + 1) % 3]
        x2 = x2 + keys[(group + 2) % 3] + np.uint32(group + 1)
    return x1, x2


_registered = False


def is_registered() -> bool:
    """Whether CPU programs compiled from now on use `threefry2x32_unrolled`."""
    return _registered


def rolled_requested() -> bool:
    """Whether AUTOENCODERS_ROLLED_THREEFRY asks to keep JAX's rolled loop (set, and not 0)."""
    return os.environ.get(ROLLED_ENV, "") not in ("", "0")


def register_unrolled_cpu_lowering() -> bool:
    """Lower `threefry2x32_p` on CPU with `threefry2x32_unrolled` from now on (idempotent); True
    if it is registered. False, JAX's own lowering kept, where AUTOENCODERS_ROLLED_THREEFRY asks
    for it or JAX's API is missing or changed (then with one warning; nothing is raised).

    Programs compiled before the call keep the rolled loop (jit caches compiled code)."""
    global _registered
    if _registered:
        return True
    if rolled_requested():
        return False
    try:
        _register()
    except Exception as e:  # whatever changed in JAX's internals: keep JAX's own lowering
        logging.warning(
            "Threefry: keeping JAX's own CPU lowering; the straight-line one could not be "
            "registered (%s: %s).",
            type(e).__name__,
            e,
        )
        return False
    _registered = True
    return True


def _register() -> None:
    """The registration, through JAX APIs its compatibility policy does not cover. Checks first
    that the primitive still takes the four uint32 arrays and returns the two that
    `threefry2x32_unrolled` expects, with no parameters: a changed primitive raises here, before
    anything is registered, instead of in every later compilation."""
    from jax.extend.random import threefry2x32_p, threefry_2x32
    from jax.interpreters import mlir

    words = np.zeros(2, np.uint32)
    jaxpr = jax.make_jaxpr(threefry_2x32)(words, words).jaxpr
    calls = [e for e in jaxpr.eqns if e.primitive is threefry2x32_p]
    if len(calls) != 1:
        raise RuntimeError("jax.extend.random.threefry_2x32 no longer binds threefry2x32_p once")
    (call,) = calls
    if len(call.invars) != 4 or len(call.outvars) != 2 or call.params:
        raise RuntimeError(
            f"threefry2x32_p changed: {len(call.invars)} operands, {len(call.outvars)} results, "
            f"parameters {sorted(call.params)} (expected 4, 2, none)"
        )
    rule = mlir.lower_fun(threefry2x32_unrolled, multiple_results=True)
    mlir.register_lowering(threefry2x32_p, rule, platform="cpu")
