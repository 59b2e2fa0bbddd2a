"""Contractive autoencoder (Rifai et al. 2011): reconstruction + λ ‖∂h(x)/∂x‖²_F.

Run (configs/ae.py's setup — MNIST grey levels, MLP 784-500-30 ReLU, Gaussian likelihood with fixed
σ = 0.1 on dequantized pixels — with λ = 0.1 and the exact Jacobian norm: 30 VJPs per image, as
the 30-unit code is smaller than the 784-pixel input):

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.train \
      --config=configs/cae.py --workdir=runs/cae

Expect test/jacobian_sq_norm (‖J‖²_F per image) below a plain AE's at about its test/sq_err.
Measured after 1 epoch (`--config.train.num_epochs=1`): test/jacobian_sq_norm 3.17 at test/sq_err
12.63; configs/ae.py's encoder after 1 epoch: ‖J‖²_F 4.72 at the same 12.63. Larger λ contracts
more at a cost in reconstruction. `--config.model.jacobian=projection` (4 probes) ran 8× faster
on a CPU with the same result: ‖J‖²_F 3.19 (the estimate) at test/sq_err 12.66.

Tied weights, as Rifai et al. (`--config.network.tied=True`), 1 epoch: ‖J‖²_F 29.47 at test/sq_err
11.76, against 29.70 at 11.76 with λ = 0 (`--config.model.contractive_weight=0`). Tied, the
penalty (λ‖J‖²_F ≈ 3 nats) is small beside the squared-error term (sq_err / 2σ² ≈ 590 nats), so
this λ hardly contracts; the untied drop (4.72 → 3.17) is not comparable, since untied the penalty
can also be met by shrinking the code.

Arguments: as configs/ae.py. Family fields (`--config.model.jacobian=projection`):
  contractive_weight  λ (default 0.1)
  jacobian            exact | projection (unbiased random-projection estimate) | closed_form
                      (Rifai et al.'s formula, for a one-layer encoder: network.hidden=())
  num_projections     Gaussian probes per image for jacobian=projection (default 4)

Reproduction: `python -m experiments.reproduce dae_cae_features`
(docs/reproductions/dae_cae_features.md).
"""

from configs import ae


def get_config(arg: str | None = None):
    config = ae.get_config(arg)
    config.model.family = "cae"
    config.model.contractive_weight = 0.1  # λ, in nats per unit of ‖J‖²_F
    config.model.jacobian = "exact"  # exact | projection | closed_form
    config.model.num_projections = 4  # jacobian=projection: probes per image and step
    return config
