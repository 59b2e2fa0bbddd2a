"""Deterministic autoencoder: the encoder as nonlinear dimensionality reduction.

Run (MNIST grey levels, MLP 784-500-30 ReLU, Gaussian likelihood with fixed σ = 0.1, i.e.
squared error, on dequantized pixels):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/ae.py --workdir=runs/ae

Expect test/sq_err (squared reconstruction error per image, Hinton & Salakhutdinov's unit) well
below PCA's with 30 components. Measured after 10 epochs: 7.45, against 13.76 for PCA-30 on the same
dequantized test images (`python -m experiments.evaluate --workdir=runs/ae --parts=reduction`).

Arguments (`--config=configs/ae.py:latent=2,likelihood=bernoulli`):
  latent      code size (default 30)
  data        TFDS image dataset or 'digits' (default mnist)
  likelihood  as in configs/vae.py (default gaussian)
  net         mlp | conv
Family field (`--config.model.code_activation=sigmoid`):
  code_activation  linear | sigmoid: the code's nonlinearity (default linear; see models/ae.py)

Reproduction: `python -m experiments.reproduce hinton2006`
(docs/reproductions/hinton2006.md).
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(arg, latent=30, data="mnist", likelihood="gaussian", net="mlp")
    config = common.base_config()
    config.model.family = "ae"
    config.model.latent_dim = arg.latent
    config.model.code_activation = "linear"  # linear | sigmoid
    config.network.kind = arg.net
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)
    return config
