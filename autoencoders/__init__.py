"""Everything about autoencoders, in JAX/Flax.

Four independent axes compose without special cases: model family (`models`), likelihood
(`likelihoods`), network (`networks`) and data (`data`). `training.train_and_evaluate(config,
workdir)` ties them together.
"""

__version__ = "0.1.0"

import os as _os

if not _os.environ.get("AUTOENCODERS_ROLLED_THREEFRY"):
    from autoencoders import threefry as _threefry

    _threefry.register_unrolled_cpu_lowering()
