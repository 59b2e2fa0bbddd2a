"""Variational autoencoder (Kingma & Welling 2014); defaults: the Flax VAE example.

Run (static Larochelle binarized MNIST, MLP 784-500-20 ReLU, Bernoulli, Adam 1e-3, batch 128):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/vae.py --workdir=runs/vae

Expect test/neg_elbo <= 105 nats per image after 10 epochs (the Flax example reports ~104);
see README.md for the number measured with this repo.

Arguments (`--config=configs/vae.py:latent=2,data=mnist,likelihood=continuous_bernoulli`):
  latent      latent dimension (default 20)
  data        TFDS image dataset or 'digits' (default binarized_mnist: no extra binarization)
  likelihood  bernoulli | continuous_bernoulli | gaussian | gaussian_learned |
              discretized_logistic; sets the matching preprocessing (bernoulli: dynamic
              binarization; gaussian*: dequantization). Default bernoulli.
  net         mlp | conv
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(
        arg, latent=20, data="binarized_mnist", likelihood="bernoulli", net="mlp"
    )
    config = common.base_config()
    config.model.family = "vae"
    config.model.latent_dim = arg.latent
    config.network.kind = arg.net
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)
    if arg.data == "binarized_mnist":
        config.data.binarization = "none"  # already (statically) binarized by Larochelle
    return config
