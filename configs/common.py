"""Defaults shared by every config, and the short argument strings configs accept.

A config file's `get_config(arg)` takes a string such as "latent=2,likelihood=gaussian_learned"
(`--config=configs/vae.py:latent=2,likelihood=gaussian_learned`); every field can still be
overridden with `--config.<field>=<value>`.
"""

from __future__ import annotations

import ml_collections

# Short likelihood names for arguments and sweeps -> (likelihood fields, data preprocessing).
LIKELIHOOD_PRESETS = {
    # Bernoulli on binary data: binarize grey levels afresh every minibatch.
    "bernoulli": ({"name": "bernoulli"}, {"binarization": "dynamic", "dequantize": False}),
    # Continuous Bernoulli: a proper density on grey levels in [0, 1].
    "continuous_bernoulli": (
        {"name": "continuous_bernoulli"},
        {"binarization": "none", "dequantize": False},
    ),
    # Gaussian with a fixed σ: squared error (σ sets its weight against the KL).
    "gaussian": (
        {"name": "gaussian", "learn_sigma": False},
        {"binarization": "none", "dequantize": True},
    ),
    # Gaussian with a per-pixel σ from the decoder, on dequantized grey levels.
    "gaussian_learned": (
        {"name": "gaussian", "learn_sigma": True},
        {"binarization": "none", "dequantize": True},
    ),
    # 8-bit data as it is: a discretized logistic over the grey levels.
    "discretized_logistic": (
        {"name": "discretized_logistic"},
        {"binarization": "none", "dequantize": False},
    ),
}


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parses "k1=v1,k2=v2" into a ConfigDict typed like `defaults` (unknown keys are errors)."""
    result = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            raise ValueError(
                f"Config argument {item!r}: expected key=value with key one of "
                f"{', '.join(defaults)}."
            )
        kind = type(defaults[key])
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"Config argument {key}={value!r}: must be true or false.")
            result[key] = value.lower() in ("true", "1")
        else:
            try:
                result[key] = kind(value)
            except ValueError:
                raise ValueError(
                    f"Config argument {key}={value!r}: must be of type {kind.__name__}."
                ) from None
    return result


def base_config() -> ml_collections.ConfigDict:
    """Every field a run reads, with neutral defaults. Config files change what they need."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Settings trained together as one vmapped program, each combination a member with its own
    # metrics and checkpoints in workdir/members/ (see autoencoders.training): seeds and float
    # hyper-parameters, e.g. --config.vmap="{'seed': (0, 1, 2, 3), 'beta': (0.5, 1.0)}".
    c.vmap = ml_collections.ConfigDict()

    c.model = ml_collections.ConfigDict()
    c.model.family = "vae"  # one of autoencoders.models.FAMILIES
    c.model.latent_dim = 20
    c.model.beta = 1.0  # weight of the KL term (VAE family); 1 = the ELBO

    c.likelihood = ml_collections.ConfigDict()
    c.likelihood.name = (
        "bernoulli"  # bernoulli | continuous_bernoulli | gaussian | discretized_logistic
    )
    c.likelihood.sigma = 0.1  # gaussian with learn_sigma=False: the fixed σ
    c.likelihood.learn_sigma = False  # gaussian: per-pixel σ from the decoder
    c.likelihood.min_sigma = 1e-3

    c.network = ml_collections.ConfigDict()
    c.network.kind = "mlp"  # mlp | conv
    c.network.hidden = (500,)  # encoder hidden widths; the decoder mirrors them
    c.network.conv_features = (32, 64)  # conv: stride-2 layers before the hidden layers
    c.network.activation = "relu"
    # Tied weights: the decoder reuses the encoder's kernels transposed (Vincent et al. 2008,
    # Rifai et al. 2011) and owns only its biases; mlp networks, deterministic-code families.
    c.network.tied = False
    # The decoder's output bias at initialisation: zeros | data_mean (the likelihood parameters of
    # the training inputs' mean image; mlp networks, untied).
    c.network.output_bias = "zeros"

    c.data = ml_collections.ConfigDict()
    # Any TFDS image dataset, 'digits' (embedded), 'frey_face' (data.LOCAL_DATASETS), or files:
    # folder:PATH (PNG/JPEG, class sub-folders as labels), npz:PATH, npy:PATH (autoencoders.files).
    c.data.name = "binarized_mnist"
    c.data.data_dir = ""  # TFDS data dir; '' = $TFDS_DATA_DIR or TFDS's default
    c.data.binarization = "none"  # none | static | dynamic
    c.data.dequantize = False  # uniform dequantization (continuous likelihoods on grey levels)
    c.data.valid_size = 0  # validation examples carved from train (fixed by split_seed)
    c.data.split_seed = 0  # validation split and static binarization
    c.data.eval_split = "test"  # test | valid
    c.data.image_size = 0  # > 0: centre-crop and resize every image to this square; 0 = keep
    c.data.device_budget_mb = 4096.0  # larger datasets stream from host memory, batch by batch

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"  # adam | adamw | sgd | adagrad | rmsprop
    c.optimizer.learning_rate = 1e-3
    c.optimizer.schedule = "constant"  # constant | cosine | warmup_cosine | iwae_stages
    c.optimizer.warmup_epochs = 0.0
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.optimizer.momentum = 0.0  # sgd
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0  # 0 = no clipping

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 128
    c.train.num_epochs = 10
    c.train.eval_every = 1  # epochs
    c.train.eval_batch_size = 1000
    # > 0: before training, each encoder layer and its decoder mirror are pretrained for this
    # many epochs as a one-layer autoencoder (greedy, layer-wise; autoencoders/pretrain.py).
    c.train.pretrain_epochs = 0
    # With several local devices (GPUs, TPU cores), split each minibatch over all of them.
    c.train.data_parallel = True
    # auto | scan | steps: one compiled lax.scan per epoch, or a Python loop over a compiled step
    # ('auto': scan, except for conv networks on CPU lowered to XLA's own convolutions, which
    # are slow inside XLA loops; see autoencoders/conv.py).
    c.train.epoch_loop = "auto"

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_epochs = 1
    c.checkpoint.max_to_keep = 3
    return c


def apply_likelihood(config: ml_collections.ConfigDict, preset: str) -> None:
    """Sets config.likelihood and the matching data preprocessing from a preset name."""
    if preset not in LIKELIHOOD_PRESETS:
        raise ValueError(
            f"Config argument likelihood={preset!r}: must be one of "
            f"{', '.join(LIKELIHOOD_PRESETS)}."
        )
    likelihood_fields, data_fields = LIKELIHOOD_PRESETS[preset]
    config.likelihood.update(likelihood_fields)
    config.data.update(data_fields)


def apply_dataset(config: ml_collections.ConfigDict, name: str) -> None:
    """Dataset-specific sizes: the embedded 8×8 digits get a small, quick setup; Frey Face (1,572
    training images) Kingma & Welling's 200 hidden units and minibatches of 100."""
    config.data.name = name
    if name == "frey_face":
        config.network.hidden = (200,)
        config.train.batch_size = 100
        config.train.num_epochs = 300
        config.train.eval_every = 25
        config.checkpoint.every_epochs = 25
    if name == "digits":
        config.network.hidden = (128,)
        config.network.conv_features = (16,)
        config.train.batch_size = 64
        config.train.num_epochs = 30
        config.train.eval_every = 5
        config.checkpoint.every_epochs = 5
