"""Adversarial autoencoder (Makhzani et al. 2015) with a 2-D code, as in the lecture's code (the
lecture this project follows, see README).

Run (MNIST dynamically binarized, encoder and decoder MLPs 1000-1000 ReLU, discriminator MLP
1000-1000 on z, Bernoulli likelihood, Adam 1e-3 for all three phases, one generator update a step,
batch 128, 20 epochs; prior: 10 2-D Gaussians on a circle). The lecture's code slows the
discriminator to lr/5 and takes two generator updates a step; measured here after one epoch that
sends every test code to one far-off point of one component (mean radius 9.2 against the prior's
1.4, recon_nll 245), while equal rates fill all ten components (radius 1.35, recon_nll 157.5):
`--config.model.disc_learning_rate_factor=0.2 --config.model.generator_steps=2` gives the lecture's.

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/aae.py --workdir=runs/aae

Expect the codes of the test digits to fill the prior's shape (the paper's Figure 2): a 2-D scatter
of f(x) over prior draws; test/disc_loss near 2·log 2 ≈ 1.39 nats when the discriminator can no
longer tell codes from prior draws, test/recon_nll (nats per image) that of a 2-D autoencoder.
With `conditional=true` each digit class fills its own mixture component or swiss-roll segment
(Figure 4). Measured after 1 epoch: test/recon_nll 157.5, test/disc_loss 1.33, test/gen_loss 0.75,
all ten mixture components occupied by the test codes.

Arguments (`--config=configs/aae.py:prior=swiss_roll,conditional=true`):
  prior        normal | mixture | swiss_roll (default mixture; mixture and swiss_roll are 2-D)
  conditional  feed the one-hot label to the discriminator and draw each image's prior sample
               from its class's part of the prior (default false)
  latent       code size (default 2)
  data         TFDS image dataset or 'digits' (default mnist)
  likelihood   as in configs/vae.py (default bernoulli: dynamic binarization)

Reproduction: `python -m experiments.reproduce aae_priors`
(docs/reproductions/aae_priors.md). Clustering with a categorical code: configs/aae_cluster.py.
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(
        arg, prior="mixture", conditional=False, latent=2, data="mnist", likelihood="bernoulli"
    )
    config = common.base_config()
    config.model.family = "aae"
    config.model.latent_dim = arg.latent
    config.model.prior = arg.prior  # normal | mixture | swiss_roll
    config.model.conditional = arg.conditional
    config.model.disc_hidden = (1000, 1000)
    config.model.disc_learning_rate_factor = 1.0  # the lecture's code: 0.2 (see above)
    config.model.generator_steps = 1  # encoder updates against the discriminator a step
    config.network.hidden = (1000, 1000)
    config.train.num_epochs = 20
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)  # after the sizes above: 'digits' shrinks them
    if arg.data == "digits":
        config.model.disc_hidden = (128,)
    return config
