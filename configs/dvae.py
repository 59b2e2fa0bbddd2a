"""Denoising VAE (Im et al. 2017): q(z | x̃) sees a corrupted image. The denoising VAE of the
lecture this project follows (see README).

Run (configs/vae.py's setup — Larochelle's binarized MNIST, MLP 784-500-20 ReLU, Bernoulli, Adam
1e-3, batch 128, 10 epochs — with salt-and-pepper noise on 10 % of the input pixels, fresh each
minibatch; the target stays clean):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/dvae.py --workdir=runs/dvae

Expect test/neg_elbo (nats per image; an upper bound on −log p(x) even though q sees x̃) a few nats
above the plain VAE's, and test/clean_neg_elbo (q sees the clean x) between the two. Measured after
1 epoch (`--config.train.num_epochs=1`): test/neg_elbo 127.5, test/clean_neg_elbo 125.6, against
119.9 for configs/vae.py.

Arguments: as configs/vae.py. Family fields as configs/dae.py (`--config.model.corruption=...`,
`--config.model.noise_level=...`).
"""

from configs import dae, vae


def get_config(arg: str | None = None):
    config = vae.get_config(arg)
    config.model.family = "dvae"
    dae.add_denoising_fields(config, "salt_and_pepper", 0.1)
    return config
