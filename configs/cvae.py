"""Conditional VAE: q(z|x, y) and p(x|y, z) see the one-hot label (the lecture's CVAE; the lecture
this project follows, see README).

Run (MNIST dynamically binarized, MLP 784-500-500 ReLU with a mirrored decoder, 2-D latent,
Bernoulli likelihood, Adam 1e-3, batch 128, 20 epochs, as in the lecture's code):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/cvae.py --workdir=runs/cvae

Expect test/neg_elbo (a bound on −log p(x | y), nats per image) below the `vae` family's with the
same 2-D latent, since the label no longer has to be stored in z; measured after 1 epoch:
test/neg_elbo 139.9 (recon_nll 135.7 + kl 4.2). Datasets without labels are refused.

Arguments (`--config=configs/cvae.py:latent=20,data=fashion_mnist`):
  latent      latent dimension (default 2: one 2-D style manifold per label)
  data        a labelled TFDS image dataset or 'digits' (default mnist)
  likelihood  as in configs/vae.py (default bernoulli: dynamic binarization)
  net         mlp | conv
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(arg, latent=2, data="mnist", likelihood="bernoulli", net="mlp")
    config = common.base_config()
    config.model.family = "cvae"
    config.model.latent_dim = arg.latent
    config.network.kind = arg.net
    config.network.hidden = (500, 500)
    config.train.num_epochs = 20
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)  # after the sizes above: 'digits' shrinks them
    return config
