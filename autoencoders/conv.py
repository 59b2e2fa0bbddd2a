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

The 'winograd' lowering computes the stride-1 3×3 convolutions that would take the patches
product (the decoders' sub-pixel layers) by Winograd's minimal filtering F(4×4, 3×3) instead
(`winograd_matmul`): up to 4× fewer multiply-adds, as 36 smaller products, rounded differently
from a direct sum (`tests/test_conv_lowering.py` holds it to XLA's convolution within 1e-4 of the
output's scale, the patches within 1e-5).

The lowering is chosen when a function is traced: CPU gets 'winograd' (matrix products, Winograd's
where it applies); GPU and TPU keep XLA's convolutions (cuDNN and TPU convolutions are fast there).
AUTOENCODERS_CONV_LOWERING=xla, =matmul (no Winograd) or =winograd overrides the choice (to
compare speed or numbers); `tests/test_conv_lowering.py` checks that all give the same outputs and
gradients.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

LOWERING_ENV = "AUTOENCODERS_CONV_LOWERING"
LOWERINGS = ("auto", "xla", "matmul", "winograd")
MATMUL_LOWERINGS = ("matmul", "winograd")
# lax.conv_general_dilated's default dimension numbers for NHWC inputs and HWIO kernels, as
# flax's nn.Conv passes them.
_NHWC = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)

Padding = str | Sequence[tuple[int, int]]


def lowering(backend: str | None = None) -> str:
    """'winograd', 'matmul' or 'xla': AUTOENCODERS_CONV_LOWERING if set (and not 'auto'), else
    'winograd' on CPU and 'xla' elsewhere (`backend`: default, `jax.default_backend()`)."""
    requested = os.environ.get(LOWERING_ENV, "auto") or "auto"
    if requested not in LOWERINGS:
        raise ValueError(f"{LOWERING_ENV}={requested!r}: must be one of {', '.join(LOWERINGS)}.")
    if requested != "auto":
        return requested
    return "winograd" if (backend or jax.default_backend()) == "cpu" else "xla"


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


# Winograd's F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
# 2016; interpolation points 0, ±1, ±2, ∞): a 4×4 output tile is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of the
# 6×6 input tile d and the 3×3 kernel g, 36 multiplies instead of 144. The 2-D transforms are the
# Kronecker products of these 1-D ones, applied as products with the flattened tiles.
WINOGRAD_TILE = 4
_WINOGRAD_BT = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ]
)
_WINOGRAD_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)
_WINOGRAD_AT = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
)


def winograd_matmul(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
    """Stride-1 VALID 3×3 convolution of a padded NHWC `x` by an HWIO `kernel`, by Winograd's
    F(4×4, 3×3): the input's 6×6 tiles (overlapping by 2) and the kernel transformed, one
    (B·⌈H/4⌉·⌈W/4⌉, C) × (C, F) product per tile position (36), the 4×4 output tiles transformed
    back; tiles that overhang the output (H or W not a multiple of 4) see zeros and are cropped."""
    m, n = WINOGRAD_TILE, WINOGRAD_TILE + 2
    batch, height, width, channels = x.shape
    features = kernel.shape[-1]
    out_h, out_w = height - 2, width - 2
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)  # the last ones may overhang: cropped
    # Padded to whole tiles plus one, the (rows, m, cols, m) view holds each tile's first m rows
    # (and columns) at its own tile index and its last two at the next one: two slices per axis
    # instead of 36, so that the gradient adds 4 arrays, not 36.
    extra_h, extra_w = (tiles_h + 1) * m - height, (tiles_w + 1) * m - width
    x = jnp.pad(x, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
    x = x.reshape(batch, tiles_h + 1, m, tiles_w + 1, m, channels)
    x = jnp.concatenate([x[:, :tiles_h], x[:, 1:, : n - m]], axis=2)
    x = jnp.concatenate([x[:, :, :, :tiles_w], x[:, :, :, 1:, : n - m]], axis=4)
    tiles = x.transpose(2, 4, 0, 1, 3, 5).reshape(n * n, -1)
    dtype = x.dtype

    def transform(matrix: np.ndarray, a: jax.Array) -> jax.Array:
        return jnp.matmul(np.kron(matrix, matrix).astype(dtype), a, precision=precision)

    # In the comment's terms: v = Bᵀ d B of every tile, u = G g Gᵀ, their products summed over
    # the channels at each of the 36 positions, then y = Aᵀ (that) A.
    v = transform(_WINOGRAD_BT, tiles).reshape(n * n, -1, channels)
    u = transform(_WINOGRAD_G, kernel.reshape(9, channels * features))
    products = jnp.matmul(v, u.reshape(n * n, channels, features), precision=precision)
    y = transform(_WINOGRAD_AT, products.reshape(n * n, -1))
    y = y.reshape(m, m, batch, tiles_h, tiles_w, features).transpose(2, 3, 0, 4, 1, 5)
    return y.reshape(batch, tiles_h * m, tiles_w * m, features)[:, :out_h, :out_w]


def matmul_conv(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Padding,
    precision=None,
    winograd: bool = False,
) -> jax.Array:
    """An NHWC × HWIO convolution as a matrix product: `patches_matmul` or, for a stride-1
    convolution whose k²·F-wide per-tap output is smaller than the k²·C-wide patches,
    `taps_matmul`; with `winograd`, `winograd_matmul` instead of the patches where it applies."""
    kh, kw, channels, features = kernel.shape
    pads = explicit_padding(padding, x.shape[1:3], (kh, kw), strides)
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    if tuple(strides) == (1, 1):
        if features < channels:
            return taps_matmul(x, kernel, precision)
        if winograd and (kh, kw) == (3, 3):
            return winograd_matmul(x, kernel, precision)
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
    where it applies (see `_is_plain_2d`) under 'matmul' and 'winograd', else XLA's
    convolution."""
    chosen = lowering()
    if chosen in MATMUL_LOWERINGS and _is_plain_2d(
        lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
        batch_group_count,
    ):  # fmt: skip
        out = matmul_conv(
            lhs, rhs, window_strides, padding, precision, winograd=chosen == "winograd"
        )
        return out if preferred_element_type is None else out.astype(preferred_element_type)
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, precision, preferred_element_type,
    )  # fmt: skip
