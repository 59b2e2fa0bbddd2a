"""β-VAE (Higgins et al. 2017): the VAE with its KL term weighted by β = 4.

Run (configs/vae.py's setup — Larochelle's binarized MNIST, MLP 784-500-20 ReLU, Bernoulli, Adam
1e-3, batch 128, 10 epochs):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/beta_vae.py --workdir=runs/beta_vae

The loss is recon_nll + β·kl; test/neg_elbo (β = 1, nats per image) is still reported. Expect a
smaller test/kl and a larger test/neg_elbo than the plain VAE's (β > 1 trades likelihood for a
posterior closer to the prior). Measured after 1 epoch (`--config.train.num_epochs=1`):
test/neg_elbo 145.8 with test/kl 7.4, against 119.9 and 24.7 for configs/vae.py.

Arguments: as configs/vae.py. Change β with `--config.model.beta=8`.
"""

from configs import vae


def get_config(arg: str | None = None):
    config = vae.get_config(arg)
    config.model.beta = 4.0
    return config
