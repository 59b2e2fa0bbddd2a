"""A faster XLA:CPU lowering of JAX's Threefry-2x32 random-bit generator: the same bits.

Every random number in training (dynamic binarization, the reparameterised posterior sample, the
shuffles) comes from Threefry-2x32 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2,
3"): 20 rounds of add-rotate-xor in five groups of four, with a key injection after each group. On
CPU, JAX lowers those five groups as a rolled loop (`fori_loop`, to keep compile times short), which
XLA:CPU runs as a while loop of small kernels that copy their state each trip; on GPU and TPU it
emits them straight-line. `register_unrolled_cpu_lowering` gives CPU the straight-line form, one
fused elementwise kernel per draw. The hash is unchanged, so every number is bit-for-bit what the
rolled loop gives (`tests/test_threefry.py` checks Random123's known-answer vectors and a
comparison against JAX's own lowering in a fresh process); only the speed changes. On a 2-core
CPU, `python -m benchmarks.run --benchmarks=train --models=iwae,mlp --no_torch --repeats=3` (real
MNIST) ran the IWAE-paper VAE's step in 1.02 ms instead of 1.27 with AUTOENCODERS_ROLLED_THREEFRY=1,
and the MLP VAE's in 5.24 ms instead of 6.02, with equal losses.

`autoencoders/__init__.py` registers it on import; set AUTOENCODERS_ROLLED_THREEFRY=1 before
importing to keep JAX's rolled loop (e.g. to compare compile times).
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

# Rotation distances of the 20 rounds, alternating between two groups of four (Random123 R_32x2).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_PARITY = np.uint32(0x1BD11BDA)  # Threefish's key-schedule constant


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


def register_unrolled_cpu_lowering() -> None:
    """Lower `threefry2x32_p` on CPU with `threefry2x32_unrolled` from now on (idempotent).

    Programs compiled before the call keep the rolled loop (jit caches compiled code)."""
    global _registered
    if not _registered:
        rule = mlir.lower_fun(threefry2x32_unrolled, multiple_results=True)
        mlir.register_lowering(threefry2x32_p, rule, platform="cpu")
        _registered = True
