"""Two stochastic layers (Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders"),
trained as an IWAE or as a VAE with k samples: `autoencoders/models/hvae.py`.

Run (the paper's second architecture and configs/iwae.py's training setup: MNIST dynamically
binarized every minibatch, 59,600 train / 400 validation images; q(z1|x) 784-200-200-100,
q(z2|z1) 100-100-100-50, p(z1|z2) 50-100-100-100, p(x|z1) 100-200-200-784, tanh, Bernoulli
likelihood; batch 20, Adam ε = 1e-4, 8 stages of 3^i epochs at lr 1e-3·10^(−i/7): 3,280 epochs;
k = 5 samples):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/hvae.py --workdir=runs/hvae

Expect, at the end of the full schedule, a test NLL (5,000 importance samples:
`python -m experiments.evaluate --workdir=runs/hvae --parts=density`) near the paper's Table 1:
83.89 nats per image for IWAE k = 5, 85.01 for the VAE trained with k = 5, 85.33 for k = 1.
`python -m experiments.reproduce burda2016_table1` runs the whole table.

Arguments (`--config=configs/hvae.py:k=50,objective=vae`):
  k           importance samples per image in training (default 5; k = 1 is the plain VAE)
  objective   iwae | vae (default iwae)
  gradient    reparameterization | dreg (as in configs/iwae.py)
  latent      top-layer (z2) size (default 50); latent1: the first layer's (default 100)
  data        TFDS image dataset or 'digits' (default mnist)
  likelihood  as in configs/vae.py (default bernoulli: dynamic binarization)
"""

from configs import common, iwae


def get_config(arg: str | None = None):
    arg = common.parse_arg(
        arg,
        k=5,
        objective="iwae",
        gradient="reparameterization",
        latent=50,
        latent1=100,
        data="mnist",
        likelihood="bernoulli",
    )
    config = iwae.get_config(
        f"k={arg.k},objective={arg.objective},gradient={arg.gradient},latent={arg.latent},"
        f"data={arg.data},likelihood={arg.likelihood}"
    )
    config.model.family = "hvae"
    config.model.latent1_dim = arg.latent1  # z1, the lower stochastic layer
    config.model.hidden2 = (100, 100)  # q(z2|z1) and, mirrored, p(z1|z2)
    if arg.data == "digits":  # the embedded 8x8 digits: a small, quick setup
        config.model.latent1_dim = min(arg.latent1, 16)
        config.model.hidden2 = (32,)
    return config
