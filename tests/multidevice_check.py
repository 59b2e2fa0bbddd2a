"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see test_parallel.py): trains the
same tiny runs on one device and data-parallel over four, and vmapped members over four devices,
and prints the largest parameter and metric differences as JSON."""

import json
import sys
import tempfile

import jax
import numpy as np

from autoencoders import threefry, training
from autoencoders import workdir as workdirs
from tests.helpers import tiny_config


def max_differences(config_one, config_many):
    with tempfile.TemporaryDirectory() as tmp:
        one = training.train_and_evaluate(config_one, f"{tmp}/one")
        many = training.train_and_evaluate(config_many, f"{tmp}/many")
        dirs = [f"{tmp}/one", f"{tmp}/many"]
        if config_one.vmap:
            dirs = [f"{tmp}/{w}/members/seed=1" for w in ("one", "many")]
        params = [workdirs.restore_params(w)[2] for w in dirs]
    param_diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(*(jax.tree.leaves(p) for p in params), strict=True)
    )
    keys = [k for k in one if "examples_per_sec" not in k]
    metric_diff = max(abs(one[k] - many[k]) / max(1.0, abs(one[k])) for k in keys)
    return {"params": param_diff, "metrics": metric_diff, "num_metrics": len(keys)}


def main() -> None:
    assert jax.local_device_count() == 4, jax.local_devices()
    threefry.register_unrolled_cpu_lowering()  # as the entry points do
    results = {}
    for family in ("vae", "ae"):
        single = tiny_config(family, **{"train.data_parallel": False})
        sharded = tiny_config(family, **{"train.data_parallel": True})
        results[family] = max_differences(single, sharded)
    vmap = {"seed": (0, 1, 2, 3)}
    results["vmap"] = max_differences(
        tiny_config("vae", **{"train.data_parallel": False, "vmap": vmap}),
        tiny_config("vae", **{"train.data_parallel": True, "vmap": vmap}),
    )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
