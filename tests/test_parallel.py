"""Data parallelism: training over 4 forced CPU devices equals single-device training."""

import json
import os
import subprocess
import sys

import pytest

from autoencoders import parallel
from tests.helpers import REPO, forced_cpu_devices_flags, tiny_config


def test_data_parallel_and_member_parallel_equal_single_device():
    env = {
        **os.environ,
        "XLA_FLAGS": forced_cpu_devices_flags(4),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.multidevice_check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    diffs = json.loads(result.stdout.strip().splitlines()[-1])
    for name, d in diffs.items():
        assert d["num_metrics"] > 3, name
        # Same maths, different summation order across devices: float32 round-off only.
        assert d["params"] < 1e-4, (name, d)
        assert d["metrics"] < 1e-4, (name, d)


def test_batch_must_divide_over_devices():
    class FakeMesh:
        size = 4

    with pytest.raises(ValueError, match=r"config.train.batch_size=30 .* 4 local devices"):
        parallel.check_divisible(30, FakeMesh(), "config.train.batch_size")
    parallel.check_divisible(32, FakeMesh(), "config.train.batch_size")
    assert parallel.local_mesh(tiny_config("vae")) is None  # one CPU device in this process
