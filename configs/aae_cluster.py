"""Unsupervised clustering with an adversarial autoencoder (Makhzani et al. 2015, Section 6):
the code is a cluster y (softmax over `clusters`, pushed onto one-hot draws) and a style z
(pushed onto N(0, I)); a test image's cluster is argmax y, learnt without labels.

Run (MNIST dynamically binarized, encoder and decoder MLPs 1000-1000 ReLU, two discriminators
1000-1000 (on y, on z), Bernoulli likelihood, Adam 1e-3 for every phase, batch 128, 16 clusters,
a 5-D style, 30 epochs):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/aae_cluster.py --workdir=runs/aae_cluster

Expect test/recon_nll (nats per image) and, per adversary, test/cluster_disc_loss and
test/style_disc_loss near 2·log 2 ≈ 1.39 nats once neither discriminator can tell codes from
prior draws. The clustering itself (test error when each cluster takes one labelled image's
label, as the paper scores it) is measured by the reproduction:
`python -m experiments.reproduce aae_clustering` (docs/reproductions/aae_clustering.md).

Arguments (`--config=configs/aae_cluster.py:clusters=30`):
  clusters     K, the number of clusters (default 16; the paper: 16 and 30)
  style        the style code's size, config.model.latent_dim (default 5)
  balance      weight of the cluster-balance term, config.model.balance_weight (default 10;
               0: the paper's objective)
  data         TFDS image dataset or 'digits' (default mnist)
  likelihood   as in configs/vae.py (default bernoulli: dynamic binarization)
"""

from configs import common


def get_config(arg: str | None = None):
    arg = common.parse_arg(
        arg, clusters=16, style=5, balance=10.0, data="mnist", likelihood="bernoulli"
    )
    config = common.base_config()
    config.model.family = "aae_cluster"
    config.model.num_clusters = arg.clusters
    config.model.latent_dim = arg.style  # the style z; the code the decoder sees is [y, z]
    config.model.disc_hidden = (1000, 1000)
    config.model.disc_learning_rate_factor = 1.0  # as configs/aae.py
    config.model.generator_steps = 1
    # λ of CatGAN's cluster-balance term (not the paper's; 0 is the paper's AAE, which collapses
    # into one cluster here: see autoencoders/models/aae_cluster.py).
    config.model.balance_weight = arg.balance
    config.network.hidden = (1000, 1000)
    config.train.num_epochs = 30
    common.apply_likelihood(config, arg.likelihood)
    common.apply_dataset(config, arg.data)  # after the sizes above: 'digits' shrinks them
    if arg.data == "digits":
        config.model.disc_hidden = (128,)
    return config
