"""Convolutions as matrix products on CPU: the same numbers as XLA's convolution, faster there.

XLA:CPU runs a convolution through Eigen's spatial-convolution kernels, and inside a loop body
(a scanned epoch) ~25× slower than outside one, so convolutional networks used to train one compiled
step at a time. As matrix products, the conv VAEs' steps are ~5-10% faster outside a loop and
run as fast inside one, where the scanned epoch saves another ~15% (docs/benchmarks.md).

`conv_general_dilated` has `lax.conv_general_dilated`'s signature and, for the 2-D, NHWC,
undilated, ungrouped convolutions the networks use, computes each as one matrix product:
either on the k×k shifted (and strided) windows of the input concatenated on the channel axis
(im2col: (B·H'·W', k²·C) × (k²·C, F)), or, where the output has fewer channels than the input,
as the input's product with all k² kernel taps at once ((B·H·W, C) × (C, k²·F)) summed over the
k² shifted outputs, whichever intermediate array is smaller. Their gradients, by autodiff, are
again matrix products plus pads and adds. Other convolutions go to `lax.conv_general_dilated`.

The lowering is chosen when a function is traced: CPU gets the matrix products; GPU and TPU keep
XLA's convolutions (cuDNN and TPU convolutions are fast there). AUTOENCODERS_CONV_LOWERING=xla or
=matmul overrides the choice (to compare speed or numbers); `tests/test_conv_lowering.py`
checks that both give the same outputs and gradients.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

LOWERING_ENV = "AUTOENCODERS_CONV_LOWERING"
LOWERINGS = ("auto", "xla", "matmul")
# lax.conv_general_dilated's default dimension numbers for NHWC inputs and HWIO kernels, as
# flax's nn.Conv passes them.
_NHWC = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)

Padding = str | Sequence[tuple[int, int]]


def lowering(backend: str | None = None) -> str:
    """'matmul' or 'xla': AUTOENCODERS_CONV_LOWERING if set (and not 'auto'), else 'matmul' on
    CPU and 'xla' elsewhere (`backend`: default, `jax.default_backend()`)."""
    requested = os.environ.get(LOWERING_ENV, "auto") or "auto"
    if requested not in LOWERINGS:
        raise ValueError(f"{LOWERING_ENV}={requested!r}: must be one of {', '.join(LOWERINGS)}.")
    if requested != "auto":
        return requested
    return "matmul" if (backend or jax.default_backend()) == "cpu" else "xla"


def explicit_padding(
    padding: Padding, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int]
) -> list[tuple[int, int]]:
    """(low, high) padding per spatial axis, as lax.conv_general_dilated reads `padding`."""
    if isinstance(padding, str):
        return [tuple(p) for p in lax.padtype_to_pads(sizes, kernel, strides, padding)]
    return [(int(lo), int(hi)) for lo, hi in padding]


def _window_slices(x: jax.Array, kernel: Sequence[int], strides: Sequence[int]) -> list[jax.Array]:
    """The k_h·k_w windows of a padded `x` (B, H, W, ...) that a VALID convolution multiplies by
    each kernel tap, row-major over the taps: each (B, H', W', ...)."""
    batch, height, width, *rest = x.shape
    (kh, kw), (sh, sw) = kernel, strides
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    return [
        lax.slice(
            x,
            (0, i, j, *(0 for _ in rest)),
            (batch, i + (out_h - 1) * sh + 1, j + (out_w - 1) * sw + 1, *rest),
            (1, sh, sw, *(1 for _ in rest)),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def patches_matmul(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], precision=None
) -> jax.Array:
    """VALID convolution of a padded NHWC `x` by an HWIO `kernel` as one matrix product of its
    windows (im2col) with the kernel: (B·H'·W', k²·C) × (k²·C, F)."""
    kh, kw, channels, features = kernel.shape
    windows = _window_slices(x, (kh, kw), strides)
    batch, out_h, out_w, _ = windows[0].shape
    cols = jnp.concatenate(windows, axis=-1).reshape(batch * out_h * out_w, kh * kw * channels)
    out = jnp.matmul(cols, kernel.reshape(kh * kw * channels, features), precision=precision)
    return out.reshape(batch, out_h, out_w, features)


def taps_matmul(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
    """Stride-1 VALID convolution of a padded NHWC `x` by an HWIO `kernel` as one product of the
    input with every tap, (B·H·W, C) × (C, k²·F), then the sum of each tap's shifted output."""
    kh, kw, channels, features = kernel.shape
    batch, height, width, _ = x.shape
    taps = kernel.transpose(2, 0, 1, 3).reshape(channels, kh * kw * features)
    per_tap = jnp.matmul(x.reshape(-1, channels), taps, precision=precision)
    per_tap = per_tap.reshape(batch, height, width, kh * kw, features)
    windows = _window_slices(per_tap, (kh, kw), (1, 1))
    return sum(w[:, :, :, t] for t, w in enumerate(windows))


def matmul_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Padding, precision=None
) -> jax.Array:
    """An NHWC × HWIO convolution as a matrix product: `patches_matmul` or, for a stride-1
    convolution whose k²·F-wide per-tap output is smaller than the k²·C-wide patches,
    `taps_matmul`."""
    kh, kw, channels, features = kernel.shape
    pads = explicit_padding(padding, x.shape[1:3], (kh, kw), strides)
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    if tuple(strides) == (1, 1) and features < channels:
        return taps_matmul(x, kernel, precision)
    return patches_matmul(x, kernel, strides, precision)


def _is_plain_2d(
    lhs: jax.Array,
    rhs: jax.Array,
    lhs_dilation: Sequence[int] | None,
    rhs_dilation: Sequence[int] | None,
    dimension_numbers,
    feature_group_count: int,
    batch_group_count: int,
) -> bool:
    """Whether `matmul_conv` computes this convolution: 2-D, NHWC/HWIO, undilated, ungrouped."""
    if lhs.ndim != 4 or rhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
        return False
    if any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))):
        return False
    if dimension_numbers is None:
        return False  # lax's default is NCHW/OIHW
    if not isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        dimension_numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return dimension_numbers == _NHWC


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Padding,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
) -> jax.Array:
    """`lax.conv_general_dilated`, lowered as `lowering()` chooses at trace time: `matmul_conv`
    where it applies (see `_is_plain_2d`) under 'matmul', else XLA's convolution."""
    if lowering() == "matmul" and _is_plain_2d(
        lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
        batch_group_count,
    ):  # fmt: skip
        out = matmul_conv(lhs, rhs, window_strides, padding, precision)
        return out if preferred_element_type is None else out.astype(preferred_element_type)
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, precision, preferred_element_type,
    )  # fmt: skip
