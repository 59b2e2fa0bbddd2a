"""The benchmarked VAEs: one description each, from which both the JAX config and the PyTorch
reference are built, and their analytic multiply-accumulate counts.

Analytic counts are the dense and convolution layers only (no activations, likelihood or optimizer),
per example, forward pass: a dense layer is in·out MACs; a k×k convolution is
H_out·W_out·k²·C_in·C_out; the decoder's 2× upsampling (`networks.Upsample2x`) is a k×k
convolution to 4·C_out channels at the input resolution, then depth-to-space. FLOPs = 2·MACs;
a training step is counted as 3 × forward (forward, and the backward pass's two products per layer).
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from configs import vae as vae_config

IMAGE_SHAPE = (28, 28, 1)  # MNIST-sized: every model's images unless it says otherwise
KERNEL = 3  # networks.Encoder/Decoder use 3×3 kernels, stride 2 in the encoder/decoder stacks


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A Bernoulli VAE with a diagonal Gaussian posterior and an N(0, I) prior."""

    name: str  # the flag value
    title: str  # the table label
    kind: str  # mlp | conv (networks.KINDS)
    hidden: tuple[int, ...]  # encoder hidden widths; the decoder mirrors them
    latent_dim: int
    activation: str  # relu | tanh
    batch_size: int
    default_steps: int  # steps per timed repeat unless --steps says otherwise
    conv_features: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] = IMAGE_SHAPE  # (height, width, channels)
    adam_eps: float = 1e-8
    learning_rate: float = 1e-3

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(height, width, channels) after each stride-2 encoder convolution ('SAME' padding)."""
        height, width, _ = self.image_shape
        shapes = []
        for features in self.conv_features:
            height, width = math.ceil(height / 2), math.ceil(width / 2)
            shapes.append((height, width, features))
        return shapes

    def encoder_dense_dims(self) -> list[int]:
        if self.kind == "conv":
            height, width, channels = self.conv_shapes()[-1]
            first = height * width * channels
        else:
            first = math.prod(self.image_shape)
        return [first, *self.hidden, 2 * self.latent_dim]  # mean and log-variance

    def decoder_dense_dims(self) -> list[int]:
        if self.kind == "conv":
            height, width, channels = self.conv_shapes()[-1]
            last = height * width * channels  # the 'project' layer
        else:
            last = math.prod(self.image_shape)
        return [self.latent_dim, *reversed(self.hidden), last]

    def encoder_macs(self) -> int:
        """Forward multiply-accumulates per example of q(z|x)'s network."""
        macs = _dense_macs(self.encoder_dense_dims())
        channels = self.image_shape[2]
        for height, width, features in self.conv_shapes():
            macs += height * width * KERNEL**2 * channels * features
            channels = features
        return macs

    def decoder_macs(self) -> int:
        """Forward multiply-accumulates per example (per latent sample) of p(x|z)'s network."""
        macs = _dense_macs(self.decoder_dense_dims())
        if self.kind == "conv":
            height, width, channels = self.conv_shapes()[-1]
            for features in reversed(self.conv_features):
                # networks.Upsample2x: a 3×3 conv to 4× the features at the low resolution
                macs += height * width * KERNEL**2 * channels * 4 * features
                height, width, channels = 2 * height, 2 * width, features
            macs += height * width * KERNEL**2 * channels * self.image_shape[2]  # the 'out' conv
        return macs

    def train_flops_per_step(self) -> int:
        """Analytic FLOPs of one training step: 3 × 2 × (encoder + decoder MACs) × batch."""
        return 3 * 2 * (self.encoder_macs() + self.decoder_macs()) * self.batch_size

    def importance_sample_flops(self, num_samples: int) -> float:
        """Analytic FLOPs per (example, importance sample): one decoder pass per sample, and the
        encoder pass once per example shared by its samples."""
        return 2 * self.decoder_macs() + 2 * self.encoder_macs() / num_samples

    def jax_config(self) -> ml_collections.ConfigDict:
        """configs/vae.py with this architecture: Bernoulli likelihood, dynamic binarization
        (the data named there, MNIST, is replaced by the benchmark's own images of
        `image_shape`)."""
        config = vae_config.get_config(
            f"data=mnist,likelihood=bernoulli,net={self.kind},latent={self.latent_dim}"
        )
        config.network.hidden = self.hidden
        config.network.activation = self.activation
        if self.conv_features:
            config.network.conv_features = self.conv_features
        config.train.batch_size = self.batch_size
        config.optimizer.learning_rate = self.learning_rate
        config.optimizer.eps = self.adam_eps
        return config


def _dense_macs(dims: list[int]) -> int:
    return sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=False))


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("mlp", "MLP VAE 784-512-512-20 ReLU", "mlp", (512, 512), 20, "relu", 128, 300),
        # Burda et al. (2016): 784-200-200-50 tanh, batch 20, Adam ε = 1e-4; a VAE (k = 1).
        Architecture(
            "iwae",
            "IWAE-paper VAE 784-200-200-50 tanh",
            "mlp",
            (200, 200),
            50,
            "tanh",
            20,
            1000,
            adam_eps=1e-4,
        ),
        # The repo's network.kind='conv' defaults: two stride-2 3×3 convolutions (32, 64), a
        # 500-unit hidden layer, latent 20; the decoder mirrors it with sub-pixel upsampling.
        Architecture(
            "conv",
            "conv VAE 28×28 conv(32,64)-500-20 ReLU",
            "conv",
            (500,),
            20,
            "relu",
            128,
            30,
            conv_features=(32, 64),
        ),
        # What network.kind='conv' builds for 64×64 RGB images (e.g. a folder of photos resized by
        # config.data.image_size=64) with three stride-2 layers: 64→32→16→8, an 8·8·128 code
        # for a 256-unit hidden layer, latent 32; the decoder projects back to 8×8×128 and
        # upsamples three times by sub-pixel convolutions (128, 64, 32) to a 3×3 'out' conv.
        Architecture(
            "conv64",
            "conv VAE 64×64 RGB conv(32,64,128)-256-32 ReLU",
            "conv",
            (256,),
            32,
            "relu",
            128,
            10,
            conv_features=(32, 64, 128),
            image_shape=(64, 64, 3),
        ),
    )
}
