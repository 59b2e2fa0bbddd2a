"""Stochastic contractive autoencoder: reconstruction + λ E‖h(x) − h(x + ε)‖², ε ~ N(0, σ² I).

Run (configs/ae.py's setup — MNIST grey levels, MLP 784-500-30 ReLU, Gaussian likelihood with fixed
σ = 0.1 on dequantized pixels — with input noise σ = 0.1 and λ = 10, i.e. λσ² = 0.1 on ‖J‖²_F,
the weight of configs/cae.py):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/scae.py --workdir=runs/scae

Expect the encoder to contract about as configs/cae.py's does, for one extra encoder pass per
step instead of 30 VJPs. Measured after 1 epoch (`--config.train.num_epochs=1`):
test/code_shift_sq 0.032 (≈ σ²·3.2) at test/sq_err 12.61; the encoder's exact ‖J‖²_F 3.20, against
3.17 for configs/cae.py and 4.72 for configs/ae.py.

Arguments: as configs/ae.py. Family fields (`--config.model.noise_std=0.05`):
  contractive_weight  λ (default 10)
  noise_std           σ of the input perturbation (default 0.1; not clipped, see models/scae.py)
  num_noise_samples   perturbations per image and step (default 1)
"""

from configs import ae


def get_config(arg: str | None = None):
    config = ae.get_config(arg)
    config.model.family = "scae"
    config.model.contractive_weight = 10.0  # λ; ≈ the cae weight / σ² for the same strength
    config.model.noise_std = 0.1  # σ of ε
    config.model.num_noise_samples = 1
    return config
