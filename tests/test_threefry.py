"""The unrolled CPU lowering of Threefry-2x32 (autoencoders/threefry.py) gives JAX's bits."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

import autoencoders  # noqa: F401  (registers the lowering)
from autoencoders import threefry

# Random123's known-answer vectors for threefry2x32_20: (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]

# Draws made the way training makes them; printed as JSON by a fresh process with and without
# the unrolled lowering.
DRAWS = """
import json, os, sys
import jax, numpy as np
import autoencoders
key = jax.random.key(7)
out = {
    "bernoulli": jax.jit(lambda k: jax.random.bernoulli(k, 0.3, (20, 784)))(key),
    "normal": jax.jit(lambda k: jax.random.normal(k, (128, 20)))(jax.random.fold_in(key, 3)),
    "permutation": jax.jit(lambda k: jax.random.permutation(k, 1000))(key),
    "split": jax.random.key_data(jax.jit(lambda k: jax.random.split(k, 5))(key)),
}
print(json.dumps({k: np.asarray(v).astype(float).ravel().tolist() for k, v in out.items()}))
"""


def _draws(rolled: bool) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("AUTOENCODERS_ROLLED_THREEFRY", None)
    if rolled:
        env["AUTOENCODERS_ROLLED_THREEFRY"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", DRAWS], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key, counter, expected", KNOWN_ANSWERS)
def test_known_answers(key, counter, expected):
    compiled = jax.jit(threefry_2x32)(np.uint32(key), np.uint32(counter))
    direct = threefry.threefry2x32_unrolled(*(np.array([v], np.uint32) for v in (*key, *counter)))
    assert [int(v) for v in compiled] == list(expected)
    assert [int(v[0]) for v in direct] == list(expected)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the lowering is registered for CPU")
def test_cpu_programs_have_no_rolled_loop():
    hlo = jax.jit(lambda k: jax.random.uniform(k, (20, 784))).lower(jax.random.key(0)).as_text()
    assert "while" not in hlo
    assert hlo.count("shift_left") >= 20  # all 20 rounds inline (the rolled loop body has 4)


def test_same_bits_as_jax_rolled_loop():
    unrolled, rolled = _draws(rolled=False), _draws(rolled=True)
    assert unrolled.keys() == rolled.keys()
    for name in rolled:
        np.testing.assert_array_equal(unrolled[name], rolled[name], err_msg=name)
