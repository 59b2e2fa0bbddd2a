"""Everything about autoencoders, in JAX/Flax.

Four independent axes compose without special cases: model family (`models`), likelihood
(`likelihoods`), network (`networks`) and data (`data`). `training.train_and_evaluate(config,
workdir)` ties them together. Importing the package leaves JAX as it is: the command-line entry
points register the faster CPU lowering of JAX's random bits (`threefry`) themselves.
`autoencoders.load(workdir)` gives a trained run as an object (`trained.TrainedModel`: encode,
decode, reconstruct, sample, log_likelihood on raw images).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`autoencoders.load(workdir)` (`trained.load`), imported on first use: importing the
    package stays light."""
    if name == "load":
        from autoencoders.trained import load  # noqa: PLC0415

        return load
    raise AttributeError(f"module 'autoencoders' has no attribute {name!r}")
