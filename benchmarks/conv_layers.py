"""Each convolution of a conv VAE alone, forward and backward, in each lowering beside PyTorch:
which layers the CPU's lowering loses on, and what it could reach with no data movement.

    python -m benchmarks.conv_layers --model=conv --repeats=10

For every 3×3 convolution of benchmarks/architectures.py's `--model` (the encoder's stride-2
ones, the decoder's sub-pixel ones and its 'out' layer), at the model's batch size, best
milliseconds of one call of:
- jit(grad(sum(conv(x, k)²))) in x and k, the convolution lowered as matrix products with
  Winograd's F(4×4, 3×3) where it applies (`autoencoders/conv.py`'s 'winograd', the CPU's
  default), as matrix products without it ('matmul') and as XLA's own convolution;
- PyTorch eager's conv2d forward and backward on the same numbers, NCHW and channels-last;
- the CPU lowering's products alone (the `dot_general`s of that gradient's jaxpr, at their
  shapes, in one jitted call): the time it would take if its im2col concatenations, col2im pads,
  adds and Winograd's tile gathers took none (Winograd's transforms are products: counted).
The first encoder layer takes no input gradient (the images need none), in both frameworks. The
programs are timed in turn, one call each per round, so that they share the clock's drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from autoencoders import conv, networks
from benchmarks import parts, report, timing
from benchmarks.architectures import ARCHITECTURES, KERNEL, Architecture
from experiments import cli

LOWERINGS = ("winograd", "matmul", "xla")
CPU_LOWERING = conv.lowering("cpu")


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    batch: int
    height: int  # of the input
    width: int
    channels: int
    features: int
    stride: int
    input_gradient: bool

    @property
    def title(self) -> str:
        return (
            f"{self.name}: {self.height}×{self.width}×{self.channels} → {self.features}, "
            f"stride {self.stride}"
        )

    @property
    def flops(self) -> int:
        """Forward and backward (the input gradient where taken) FLOPs, 'SAME' padding."""
        out = -(-self.height // self.stride) * -(-self.width // self.stride)
        forward = 2 * self.batch * out * KERNEL**2 * self.channels * self.features
        return forward * (3 if self.input_gradient else 2)


def layers(arch: Architecture) -> Iterator[Layer]:
    """The model's convolutions in the order a forward pass runs them (networks.Encoder, then
    networks.Decoder's Upsample2x layers and 'out')."""
    batch, (height, width, channels) = arch.batch_size, arch.image_shape
    for i, (out_h, out_w, features) in enumerate(arch.conv_shapes()):
        yield Layer(f"conv_{i}", batch, height, width, channels, features, 2, i > 0)
        height, width, channels = out_h, out_w, features
    for i, features in enumerate(reversed(arch.conv_features)):
        yield Layer(f"upsample_{i}", batch, height, width, channels, 4 * features, 1, True)
        height, width, channels = 2 * height, 2 * width, features
    yield Layer("out", batch, height, width, channels, arch.image_shape[2], 1, True)


def _jax_gradient(layer: Layer, lowering: str) -> Callable[..., tuple[jax.Array, ...]]:
    def loss(x: jax.Array, kernel: jax.Array) -> jax.Array:
        strides = (layer.stride, layer.stride)
        if lowering in conv.MATMUL_LOWERINGS:
            y = conv.matmul_conv(x, kernel, strides, "SAME", winograd=lowering == "winograd")
        else:
            y = jax.lax.conv_general_dilated(
                x, kernel, strides, "SAME", dimension_numbers=networks.NHWC
            )
        return jnp.sum(y**2)

    return jax.grad(loss, argnums=(0, 1) if layer.input_gradient else 1)


def time_layer(layer: Layer, repeats: int, with_torch: bool) -> dict[str, float]:
    """Best seconds of each program of the module's docstring for `layer`."""
    rng = np.random.default_rng(0)
    x_np = rng.random((layer.batch, layer.height, layer.width, layer.channels), np.float32)
    k_np = rng.normal(0, 0.1, (KERNEL, KERNEL, layer.channels, layer.features)).astype(np.float32)
    x, kernel = jnp.asarray(x_np), jnp.asarray(k_np)
    programs: dict[str, Callable[[], object]] = {}
    for lowering in LOWERINGS:
        compiled = jax.jit(_jax_gradient(layer, lowering)).lower(x, kernel).compile()
        programs[f"JAX, {lowering}"] = lambda c=compiled: jax.block_until_ready(c(x, kernel))
    traced = jax.make_jaxpr(_jax_gradient(layer, CPU_LOWERING))(x, kernel)
    programs["its products alone"] = _products_call(parts.jaxpr_products(traced.jaxpr))
    if with_torch:
        from benchmarks import torch_reference

        for layout in torch_reference.CONV_LAYOUTS:
            programs[f"PyTorch, {layout}"] = torch_reference.conv_backward_call(
                x_np, k_np, layer.stride, layer.input_gradient, layout
            )
    return timing.interleaved_best_seconds(programs, repeats)


def _products_call(products: Sequence[parts.Product]) -> Callable[[], object]:
    """One jitted call of `products` on random operands (`parts.random_operands`)."""
    operands = parts.random_operands(products)

    @jax.jit
    def call(operands: dict[int, jax.Array]) -> list[jax.Array]:
        return [
            jax.lax.dot_general(*(operands[i] for i in p.operands), p.dimension_numbers)
            for p in products
        ]

    return lambda: jax.block_until_ready(call(operands))


def layer_table(arch: Architecture, repeats: int, with_torch: bool) -> report.Table:
    rows = [(layer, time_layer(layer, repeats, with_torch)) for layer in layers(arch)]
    programs = list(rows[0][1])
    table = report.Table(
        f"{arch.title}: each convolution, forward and backward, batch {arch.batch_size}",
        ["layer", "GFLOP", *(f"{p} ms" for p in programs), f"best PyTorch / JAX, {CPU_LOWERING}"],
    )
    for layer, seconds in rows:
        torch_best = min((s for p, s in seconds.items() if p.startswith("PyTorch")), default=None)
        speedup = None if torch_best is None else torch_best / seconds[f"JAX, {CPU_LOWERING}"]
        table.add(layer.title, layer.flops / 1e9, *(1e3 * seconds[p] for p in programs), speedup)
    totals = {p: sum(seconds[p] for _, seconds in rows) for p in programs}
    flops = sum(layer.flops for layer, _ in rows)
    table.add("all", flops / 1e9, *(1e3 * totals[p] for p in programs), None)
    table.notes.append(
        f"best of {repeats} calls each, timed in turn after a warm-up call; 'its products alone': "
        f"the matrix products of the 'JAX, {CPU_LOWERING}' program without its data movement; "
        "GFLOP: a direct convolution's (Winograd's products do fewer)"
    )
    return table


def main(argv: Sequence[str]) -> None:
    cli.no_stray_arguments(argv)
    with_torch = not flags.FLAGS.no_torch
    if with_torch:
        from benchmarks import torch_reference

        torch_reference.use_all_cores()
    arch = ARCHITECTURES[flags.FLAGS.model]
    print(layer_table(arch, flags.FLAGS.repeats, with_torch).to_markdown())


if __name__ == "__main__":
    # Defined here, not at import: `benchmarks.run` (imported beside this module by the tests)
    # has flags of the same names.
    flags.DEFINE_enum("model", "conv", ["conv", "conv64"], "benchmarks/architectures.py")
    flags.DEFINE_integer("repeats", 10, "timed calls of each program", lower_bound=1)
    flags.DEFINE_bool("no_torch", False, "skip the PyTorch columns")
    cli.run(main)
