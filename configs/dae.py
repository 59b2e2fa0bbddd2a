"""Denoising autoencoder (Vincent et al. 2008, 2010): encode a corrupted image, decode it clean.

Run (configs/ae.py's setup — MNIST grey levels, MLP 784-500-30 ReLU, Gaussian likelihood with fixed
σ = 0.1 on dequantized pixels — with masking noise zeroing 25 % of the input pixels, fresh each
minibatch):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/dae.py --workdir=runs/dae

Expect test/sq_err (squared error per image of the clean image reconstructed from its masked
copy) above the plain AE's; test/clean_sq_err (reconstructed from the clean image) can be higher
still, since the encoder only ever saw inputs with a quarter of their ink missing. Measured after
1 epoch (`--config.train.num_epochs=1`): test/sq_err 15.06, test/clean_sq_err 19.95, against
12.63 for configs/ae.py.

Arguments: as configs/ae.py (`--config=configs/dae.py:latent=2,likelihood=bernoulli`).
Family fields (`--config.model.corruption=gaussian --config.model.noise_level=0.3`):
  corruption   gaussian | masking | salt_and_pepper (default masking)
  noise_level  σ for gaussian (before clipping to [0, 1]); else the probability that a pixel is
               corrupted (default 0.25)

Reproduction: `python -m experiments.reproduce dae_cae_features`
(docs/reproductions/dae_cae_features.md).
"""

from autoencoders import sweeps
from configs import ae


def add_denoising_fields(config, corruption: str, noise_level: float) -> None:
    """The fields of the denoising families (`dae`, `dvae`), in `config.model`."""
    config.model.corruption = corruption  # gaussian | masking | salt_and_pepper
    config.model.noise_level = noise_level  # σ for gaussian, else a per-pixel probability


def get_config(arg: str | None = None):
    config = ae.get_config(arg)
    config.model.family = "dae"
    add_denoising_fields(config, "masking", 0.25)
    return config


SWEEPS = ("noise",)


def get_sweep(name: str):
    """Named sweeps (`python -m experiments.sweep --config=configs/dae.py:sweep=NAME`).

    noise  one run per corruption (masking, salt_and_pepper, gaussian); each trains the noise
           levels {0.1, 0.25, 0.5} together as vmapped members (`config.vmap`), since a noise
           level changes no shape. `python -m experiments.report --sweep_dir=D --x=noise_level`.
    """
    if name == "noise":
        return sweeps.declare(
            sweeps.axis("model.corruption", ["masking", "salt_and_pepper", "gaussian"]),
            fixed={"vmap": {"noise_level": (0.1, 0.25, 0.5)}},
        )
    raise ValueError(f"configs/dae.py has no sweep {name!r}: {', '.join(SWEEPS)}.")
