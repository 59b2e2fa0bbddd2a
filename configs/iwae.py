"""Importance weighted autoencoder (Burda et al. 2016), one stochastic layer, and its VAE twin.

Run (Burda et al.'s setup: MNIST dynamically binarized every minibatch, 59,600 train / 400
validation images, MLP 784-200-200-50 tanh with a mirrored decoder, Bernoulli likelihood, batch 20,
Adam ε = 1e-4, 8 stages of 3^i epochs at lr 1e-3·10^(−i/7): 3,280 epochs; k = 5 samples):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/iwae.py --workdir=runs/iwae

A quick run: add `--config.train.num_epochs=13` (the first three stages). The paper's VAE column
(the ELBO estimated with k samples): `--config=configs/iwae.py:objective=vae`.

Expect, at the end of the full schedule, test/neg_iwae_bound (−L_5, nats per image) a little above
the test NLL that Burda et al. report with 5,000 importance samples: 85.54 for IWAE k = 5, 86.47
for the VAE trained with k = 5, 86.76 for k = 1 (Burda, Grosse & Salakhutdinov 2016, "Importance
Weighted Autoencoders", Table 1). Measured after 1 epoch (`--config.train.num_epochs=1`, 2,980
steps): test/neg_iwae_bound 116.5 and test/neg_elbo 123.0; with objective=vae, 112.2 and 115.4
(the IWAE objective's advantage shows later in training; its ELBO is looser by design).

Arguments (`--config=configs/iwae.py:k=50,objective=vae`):
  k           importance samples per image in training (default 5; k = 1 is the plain VAE)
  objective   iwae | vae (default iwae)
  gradient    reparameterization | dreg (default reparameterization, the paper's; dreg: the
              doubly reparameterized gradient for q, Tucker et al. 2019; for vae, "sticking
              the landing")
  latent      latent dimension (default 50)
  data        TFDS image dataset or 'digits' (default mnist)
  likelihood  as in configs/vae.py (default bernoulli: dynamic binarization)
  net         mlp | conv
Adam's β1 is 0.9 as in the paper's text (its code uses 0.99: `--config.optimizer.b1=0.99`).

Reproduction: `python -m experiments.reproduce burda2016_table1`
(docs/reproductions/burda2016_table1.md).
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(
        arg,
        k=5,
        objective="iwae",
        gradient="reparameterization",
        latent=50,
        data="mnist",
        likelihood="bernoulli",
        net="mlp",
    )
    config = common.base_config()
    config.model.family = "iwae"
    config.model.latent_dim = arg.latent
    config.model.objective = arg.objective  # iwae | vae
    config.model.num_samples = arg.k  # importance samples per image in training
    config.model.gradient = arg.gradient  # reparameterization | dreg (models/iwae.py)
    config.network.kind = arg.net
    config.network.hidden = (200, 200)
    config.network.activation = "tanh"
    # As in Burda et al.'s code, the decoder starts at the training images' mean intensities
    # (the logits of the per-pixel marginal); it matters most for the two-layer model (hvae.py).
    config.network.output_bias = "data_mean" if arg.net == "mlp" else "zeros"
    config.optimizer.eps = 1e-4
    config.optimizer.schedule = "iwae_stages"
    config.train.batch_size = 20
    config.train.num_epochs = 3280  # Σ_{i<8} 3^i
    config.train.eval_every = 10
    config.checkpoint.every_epochs = 10
    config.data.valid_size = 400
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)  # after the sizes above: 'digits' shrinks them
    return config
