"""A plain PyTorch eager VAE trainer, written as a PyTorch user writes one: the reference that
`benchmarks.run` times this codebase's training loop against.

Same layer sizes as `autoencoders.networks` (from `benchmarks.architectures`), the same init family
as Flax's defaults (LeCun-normal kernels, truncated at ±2σ, and zero biases), Adam, a Bernoulli
likelihood (binary cross-entropy with logits summed per image) plus the analytic KL to N(0, I),
one reparameterized posterior sample, dynamic binarization drawn afresh every minibatch, and a
per-step Python loop over minibatches of a shuffled uint8 training set held in memory.

Device-aware: it runs on CUDA where `torch.cuda.is_available()` (the data held on the GPU), else on
the CPU; $BENCH_TORCH_DEVICE (e.g. `cpu`) overrides. Timed calls end synchronised: `train_steps`
reads its loss back to the host, `matmul_gflops` calls torch.cuda.synchronize.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import timing
from benchmarks.architectures import KERNEL, Architecture

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}

# Flax's lecun_normal: a normal truncated at ±2 standard deviations, rescaled so that the
# truncated distribution has variance 1/fan_in (this constant is the truncated std of N(0, 1)).
_TRUNCATED_STD = 0.87962566103423978


def device() -> torch.device:
    """CUDA where available, else the CPU; $BENCH_TORCH_DEVICE overrides."""
    name = os.environ.get("BENCH_TORCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def use_all_cores() -> int:
    """torch.set_num_threads(the core count); returns it."""
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def lecun_normal_(weight: torch.Tensor, fan_in: int) -> None:
    std = math.sqrt(1.0 / fan_in) / _TRUNCATED_STD
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def init_like_flax(module: nn.Module) -> None:
    """LeCun-normal weights (fan_in = inputs × kernel area) and zero biases, as Flax's defaults."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            lecun_normal_(layer.weight, layer.in_features)
        elif isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            in_channels = layer.in_channels
            lecun_normal_(layer.weight, in_channels * math.prod(layer.kernel_size))
        else:
            continue
        nn.init.zeros_(layer.bias)


def _mlp(dims: list[int], activation: str, activate_final: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if activate_final or i < len(dims) - 2:
            layers.append(ACTIVATIONS[activation]())
    return layers


class TorchVAE(nn.Module):
    """Encoder x -> (mean, log_var), decoder z -> Bernoulli logits, shaped like networks.py's."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        act = ACTIVATIONS[arch.activation]
        channels = arch.image_shape[2]
        encoder: list[nn.Module] = []
        decoder: list[nn.Module] = []
        if arch.kind == "conv":
            for features in arch.conv_features:
                encoder += [nn.Conv2d(channels, features, KERNEL, stride=2, padding=1), act()]
                channels = features
            encoder.append(nn.Flatten())
        else:
            encoder.append(nn.Flatten())
        encoder += _mlp(arch.encoder_dense_dims(), arch.activation, activate_final=False)
        decoder += _mlp(
            arch.decoder_dense_dims(), arch.activation, activate_final=arch.kind == "conv"
        )
        if arch.kind == "conv":
            height, width, channels = arch.conv_shapes()[-1]
            decoder.append(nn.Unflatten(1, (channels, height, width)))
            for features in reversed(arch.conv_features):
                # networks.Upsample2x: a 3×3 conv to 4× the features, then depth-to-space.
                decoder += [
                    nn.Conv2d(channels, 4 * features, KERNEL, padding=1),
                    nn.PixelShuffle(2),
                    act(),
                ]
                channels = features
            decoder.append(nn.Conv2d(channels, arch.image_shape[2], KERNEL, padding=1))
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        init_like_flax(self)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Negative ELBO, nats per image, mean over the batch (one posterior sample)."""
        mean, log_var = self.encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = self.decoder(z).reshape(x.shape)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (log_var.exp() + mean**2 - 1.0 - log_var).sum(1)
        return (recon + kl).mean()


class TorchTrainer:
    """Adam on TorchVAE over a uint8 training set, one Python iteration per minibatch.

    `compiled`: the loss (forward, and through AOTAutograd its backward) goes through
    `torch.compile` with its defaults (Inductor), as a PyTorch user speeds a model up; Adam stays
    eager. The first steps compile it (`train_steps` of the warm-up: time them apart)."""

    def __init__(
        self, arch: Architecture, images: np.ndarray, seed: int = 0, compiled: bool = False
    ):
        torch.manual_seed(seed)
        self.arch = arch
        self.device = device()
        self.model = TorchVAE(arch).to(self.device)
        self.loss = torch.compile(self.model.loss) if compiled else self.model.loss
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=arch.learning_rate, eps=arch.adam_eps
        )
        # (N, H, W, C) uint8 -> (N, C, H, W), as PyTorch convolutions want it.
        self.images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(self.device)
        self.order = torch.randperm(len(self.images), device=self.device)
        self.cursor = 0

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def next_batch(self) -> torch.Tensor:
        batch_size = self.arch.batch_size
        if self.cursor + batch_size > len(self.images):  # a new epoch: reshuffle
            self.order = torch.randperm(len(self.images), device=self.device)
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + batch_size]
        self.cursor += batch_size
        intensities = self.images[idx].float() / 255.0
        return torch.bernoulli(intensities)  # dynamic binarization

    def train_steps(self, num_steps: int) -> float:
        """`num_steps` Adam steps; returns their mean loss (nats per image), read back to the host
        (on CUDA this waits for the steps to finish)."""
        total = torch.zeros((), device=self.device)
        for _ in range(num_steps):
            loss = self.loss(self.next_batch())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
        return float(total) / max(num_steps, 1)


def matmul_gflops(size: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of torch.mm on two size×size matrices (float32: torch's default precision,
    which on CUDA is full float32 unless TF32 is allowed), on `device()`, after a warm-up."""
    dev = device()
    a = torch.randn(size, size, device=dev, dtype=dtype)
    b = torch.randn(size, size, device=dev, dtype=dtype)

    def matmul() -> None:
        torch.mm(a, b)
        synchronize(dev)

    return timing.best_matmul_gflops(matmul, size, repeats)


CONV_LAYOUTS = ("NCHW", "channels-last")


def conv_backward_call(
    x: np.ndarray, kernel: np.ndarray, stride: int, input_gradient: bool, layout: str
) -> Callable[[], None]:
    """One call of conv2d's forward and backward of sum(conv(x, k)²) (x NHWC, k HWIO, as JAX
    holds them), in `layout`, padded as `TorchVAE`'s convolutions are (one pixel each side: the
    output sizes and FLOPs of XLA's 'SAME'): `benchmarks.conv_layers`."""
    dev = device()
    memory_format = torch.channels_last if layout == "channels-last" else torch.contiguous_format
    inputs = torch.tensor(x.transpose(0, 3, 1, 2)).to(dev, memory_format=memory_format)
    inputs.requires_grad_(input_gradient)
    weight = torch.tensor(kernel.transpose(3, 2, 0, 1)).to(dev, memory_format=memory_format)
    weight.requires_grad_(True)

    def call() -> None:
        inputs.grad = weight.grad = None
        F.conv2d(inputs, weight, stride=stride, padding=KERNEL // 2).square().sum().backward()
        synchronize(dev)

    return call
