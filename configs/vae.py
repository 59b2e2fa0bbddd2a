"""Variational autoencoder (Kingma & Welling 2014); defaults: the Flax VAE example.

Run (static Larochelle binarized MNIST, MLP 784-500-20 ReLU, Bernoulli, Adam 1e-3, batch 128):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/vae.py --workdir=runs/vae

Expect test/neg_elbo <= 105 nats per image after 10 epochs (the Flax example reports ~104);
measured with this repo (seed 0, CPU): 103.54, and 103.48 on a CPU without AVX-512, whose
float rounding differs (the reproductions below).

Arguments (`--config=configs/vae.py:latent=2,data=mnist,likelihood=continuous_bernoulli`):
  latent      latent dimension (default 20)
  data        TFDS image dataset, 'digits' or 'frey_face' (Kingma & Welling's real-valued faces:
              use a Gaussian or continuous-Bernoulli likelihood). Default binarized_mnist (no
              extra binarization)
  likelihood  bernoulli | continuous_bernoulli | gaussian | gaussian_learned |
              discretized_logistic; sets the matching preprocessing (bernoulli: dynamic
              binarization; gaussian*: dequantization). Default bernoulli.
  net         mlp | conv

Reproductions: `python -m experiments.reproduce flax_vae` (this config's defaults) and
`python -m experiments.reproduce kingma_welling_fig2`: docs/reproductions/flax_vae.md and
docs/reproductions/kingma_welling_fig2.md.
"""

from autoencoders import sweeps
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


# MNIST has 60,000 training images, Frey Face 1,572 (sources.py's 80/20 split of 1,965). Kingma &
# Welling's weight decay is a N(0, I) prior on the parameters, i.e. ½‖θ‖²/N per example, whose
# gradient is θ/N.
_MNIST_TRAIN_SIZE = 60_000
_FREY_FACE_TRAIN_SIZE = 1_572


SWEEPS = ("latent_x_likelihood", "kingma_welling_fig2", "kingma_welling_frey")


def get_sweep(name: str):
    """Named sweeps (`python -m experiments.sweep --config=configs/vae.py:sweep=NAME`).

    latent_x_likelihood  MNIST; latent {2, 5, 10, 20, 50} × {Bernoulli on dynamically binarized
                         data, continuous Bernoulli on grey levels, Gaussian with learned σ on
                         dequantized grey levels}. The three bounds are on different data, so
                         compare latent sizes within a likelihood, not across.
    kingma_welling_fig2  Kingma & Welling (2014) Figure 2 on MNIST: latent {3, 5, 10, 20, 200},
                         one hidden layer of 500 tanh units, Adagrad (step 0.02), batch 100,
                         weight decay as a N(0, I) prior, Bernoulli on dynamically binarized data.
                         100 epochs is 6·10⁶ training examples; the paper's x-axis goes to 10⁸
                         (`--config.train.num_epochs=1667`).
    kingma_welling_frey  the same figure's Frey Face panel: latent {2, 5, 10, 20}, 200 tanh units,
                         Adagrad (step 0.02), batch 100, weight decay as a N(0, I) prior, a
                         Gaussian with learned σ on dequantized faces (nats of a density per
                         image; the paper's decoder mean is a sigmoid, ours is unconstrained).
                         300 epochs is 4.7·10⁵ training examples; needs frey_rawface.mat (see
                         autoencoders/sources.py: $AUTOENCODERS_DATA_DIR, else downloaded).
                         Measured for latent 2 (`--runs=0`; seed 0, CPU, 40,000 examples/s):
                         test/neg_elbo −585.3 nats per image (negative: a density on [0, 1]^560).
    """
    if name == "latent_x_likelihood":
        return sweeps.declare(
            sweeps.product(
                sweeps.axis("model.latent_dim", [2, 5, 10, 20, 50]),
                sweeps.arg("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian_learned"]),
            ),
            fixed={"arg:data": "mnist"},
        )
    if name == "kingma_welling_fig2":
        return sweeps.declare(
            sweeps.axis("model.latent_dim", [3, 5, 10, 20, 200]),
            fixed={
                "arg:data": "mnist",
                "arg:likelihood": "bernoulli",
                "network.hidden": (500,),
                "network.activation": "tanh",
                "optimizer.name": "adagrad",
                "optimizer.learning_rate": 0.02,
                "optimizer.weight_decay": 1.0 / _MNIST_TRAIN_SIZE,
                "train.batch_size": 100,
                "train.num_epochs": 100,
            },
        )
    if name == "kingma_welling_frey":
        return sweeps.declare(
            sweeps.axis("model.latent_dim", [2, 5, 10, 20]),
            fixed={
                "arg:data": "frey_face",
                "arg:likelihood": "gaussian_learned",
                "network.activation": "tanh",
                "optimizer.name": "adagrad",
                "optimizer.learning_rate": 0.02,
                "optimizer.weight_decay": 1.0 / _FREY_FACE_TRAIN_SIZE,
            },
        )
    raise ValueError(f"configs/vae.py has no sweep {name!r}: {', '.join(SWEEPS)}.")
