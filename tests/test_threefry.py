"""The unrolled CPU lowering of Threefry-2x32 (autoencoders/threefry.py) gives JAX's bits; it is
registered by the entry points (and tests/conftest.py), not by importing the library, and a JAX
whose internals changed keeps its own lowering with one warning."""

import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

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
from autoencoders import threefry
rolled = os.environ.get("AUTOENCODERS_ROLLED_THREEFRY") == "1"
assert threefry.register_unrolled_cpu_lowering() is not rolled
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
    assert threefry.register_unrolled_cpu_lowering()  # done by tests/conftest.py already
    hlo = jax.jit(lambda k: jax.random.uniform(k, (20, 784))).lower(jax.random.key(0)).as_text()
    assert "while" not in hlo
    assert hlo.count("shift_left") >= 20  # all 20 rounds inline (the rolled loop body has 4)


def test_same_bits_as_jax_rolled_loop():
    unrolled, rolled = _draws(rolled=False), _draws(rolled=True)
    assert unrolled.keys() == rolled.keys()
    for name in rolled:
        np.testing.assert_array_equal(unrolled[name], rolled[name], err_msg=name)


# Imports the library as a user's script does, and reports what became of JAX's CPU lowering.
IMPORT_ONLY = """
import json
import jax
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

def cpu_rule():
    return mlir._platform_specific_lowerings["cpu"].get(threefry2x32_p)

def rolled():
    lowered = jax.jit(lambda k: jax.random.uniform(k, (4, 3))).lower(jax.random.key(0))
    return "while" in lowered.as_text()

rule, rolled_before = cpu_rule(), rolled()
import autoencoders, autoencoders.models, autoencoders.training
from autoencoders import threefry
print(json.dumps({
    "registered": threefry.is_registered(),
    "same_rule": cpu_rule() is rule,
    "rolled_before": rolled_before,
    "rolled_after": rolled(),
}))
"""


def test_importing_the_library_leaves_jax_lowering_alone():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("AUTOENCODERS_ROLLED_THREEFRY", None)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "registered": False,
        "same_rule": True,
        "rolled_before": True,
        "rolled_after": True,
    }


def _breaks_register_lowering(monkeypatch):
    from jax.interpreters import mlir

    def broken(*args, **kwargs):
        raise TypeError("register_lowering() got an unexpected keyword argument 'platform'")

    monkeypatch.setattr(mlir, "register_lowering", broken)


def _removes_the_primitive(monkeypatch):
    import jax.extend.random

    monkeypatch.delattr(jax.extend.random, "threefry2x32_p")


def _removes_the_module(monkeypatch):
    import jax.interpreters

    monkeypatch.delattr(jax.interpreters, "mlir")
    monkeypatch.setitem(sys.modules, "jax.interpreters.mlir", None)  # importing it: ImportError


@pytest.mark.parametrize(
    "break_jax", [_breaks_register_lowering, _removes_the_primitive, _removes_the_module]
)
def test_a_changed_jax_api_keeps_jax_lowering_with_one_warning(monkeypatch, caplog, break_jax):
    monkeypatch.setattr(threefry, "_registered", False)
    monkeypatch.delenv("AUTOENCODERS_ROLLED_THREEFRY", raising=False)
    break_jax(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert threefry.register_unrolled_cpu_lowering() is False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "keeping JAX's own CPU lowering" in warnings[0].getMessage()
    assert not threefry.is_registered()


def test_a_changed_primitive_is_refused_before_anything_is_registered(monkeypatch, caplog):
    import jax.extend.random
    from jax.interpreters import mlir

    registered = []
    monkeypatch.setattr(mlir, "register_lowering", lambda *a, **k: registered.append(a))
    monkeypatch.setattr(threefry, "_registered", False)
    monkeypatch.delenv("AUTOENCODERS_ROLLED_THREEFRY", raising=False)
    # A JAX whose threefry_2x32 no longer binds the primitive the rule is written for.
    monkeypatch.setattr(jax.extend.random, "threefry_2x32", lambda key, count: count)
    with caplog.at_level(logging.WARNING):
        assert threefry.register_unrolled_cpu_lowering() is False
    assert registered == []
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no longer binds threefry2x32_p" in warning.getMessage()


def test_rolled_threefry_requested_keeps_jax_lowering(monkeypatch):
    monkeypatch.setattr(threefry, "_registered", False)
    monkeypatch.setenv("AUTOENCODERS_ROLLED_THREEFRY", "1")
    assert threefry.register_unrolled_cpu_lowering() is False
    assert not threefry.is_registered()
