"""Everything about autoencoders, in JAX/Flax.

Four independent axes compose without special cases: model family (`models`), likelihood
(`likelihoods`), network (`networks`) and data (`data`). `training.train_and_evaluate(config,
workdir)` ties them together. Importing the package leaves JAX as it is: the command-line entry
points register the faster CPU lowering of JAX's random bits (`threefry`) themselves.
"""

__version__ = "0.1.0"
