"""Figures: each a function of arrays -> a PNG file; returns the file's path.

matplotlib `Figure` objects rendered by Agg, without pyplot's global state, so the functions are
safe in scripts, tests and notebooks alike. Image arguments are float arrays in [0, 1] with a
trailing channel axis (…, H, W, C), C = 1 (grey) or 3 (colour). Sizes are fixed in inches at
`DPI`, so a figure's pixel size follows from its grid (`grid_figsize`) or is `SCATTER_SIZE`.
Every figure of a run carries a title: what it shows, then the run (model, dataset, latent size,
likelihood) on a second line. The sweep figures at the end (`metric_vs`, `training_curves`) take
plain numbers that `results.py` gathers from a sweep's runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

DPI = 100
CELL_IN = 0.5  # width of one image cell, inches
TITLE_IN = 0.6  # band above the grid for the two title lines
LABEL_IN = 1.0  # band left of the grid for row labels
BOTTOM_IN = 0.35  # band below the grid for column labels
MIN_WIDTH_IN = 6.5  # so a long title fits above a narrow grid
SCATTER_SIZE = (7.5, 6.5)  # inches
MAX_CELL_ASPECT = 4.0  # a cell is at most 4× as tall as wide, or as wide as tall
_PAD = 2  # pixels of white between cells (in image pixels, before scaling)


def grid_figsize(rows: int, cols: int, image_shape: Sequence[int]) -> tuple[float, float]:
    """(width, height) in inches of `image_grid` for a rows × cols grid of H × W images."""
    height, width = image_shape[:2]
    cell_h = CELL_IN * _cell_aspect(height, width)
    size = (
        max(MIN_WIDTH_IN, LABEL_IN + cols * CELL_IN + 0.2),
        TITLE_IN + rows * cell_h + BOTTOM_IN,
    )
    return tuple(round(v * DPI) / DPI for v in size)  # whole pixels: the PNG is exactly this


def _cell_aspect(height: int, width: int) -> float:
    """A cell's height over its width: the image's, within [1/4, 4], so that flat vectors
    ((1, D, 1) rows) still show as strips a reader can see, stretched."""
    return min(max(height / width, 1 / MAX_CELL_ASPECT), MAX_CELL_ASPECT)


def _mosaic(images: np.ndarray) -> np.ndarray:
    """(R, C, H, W, ch) -> one (R·(H+pad), C·(W+pad), ch) image with white gaps between cells."""
    rows, cols, h, w, ch = images.shape
    out = np.ones((rows, cols, h + _PAD, w + _PAD, ch), np.float32)
    out[:, :, :h, :w] = np.clip(images, 0.0, 1.0)
    return out.transpose(0, 2, 1, 3, 4).reshape(rows * (h + _PAD), cols * (w + _PAD), ch)


def _titled(fig: Figure, heading: str, title: str) -> None:
    fig.text(0.5, 1 - 0.08 / fig.get_figheight(), heading, ha="center", va="top", fontsize=11)
    fig.text(0.5, 1 - 0.32 / fig.get_figheight(), title, ha="center", va="top", fontsize=8)


def image_grid(
    images: np.ndarray,
    path: str,
    heading: str,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> str:
    """The figure behind every image figure: a (R, C, H, W, ch) array as an R × C grid."""
    images = np.asarray(images, np.float32)
    if images.ndim != 5:
        raise ValueError(f"image_grid expects (rows, cols, H, W, C) images, got {images.shape}.")
    rows, cols, h, w, ch = images.shape
    width_in, height_in = grid_figsize(rows, cols, (h, w))
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    grid_w, grid_h = cols * CELL_IN, rows * CELL_IN * _cell_aspect(h, w)
    left = max(LABEL_IN, (width_in - grid_w) / 2)  # centred under the title when there is room
    ax = fig.add_axes(
        (left / width_in, BOTTOM_IN / height_in, grid_w / width_in, grid_h / height_in)
    )
    mosaic = _mosaic(images)
    if ch == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(mosaic, interpolation="nearest")
    ax.set_aspect("auto")
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_yticks(
        (np.arange(rows) + 0.5) * (h + _PAD) - _PAD / 2 if row_labels is not None else [],
        row_labels if row_labels is not None else [],
        fontsize=8,
    )
    ax.set_xticks(
        (np.arange(cols) + 0.5) * (w + _PAD) - _PAD / 2 if col_labels is not None else [],
        col_labels if col_labels is not None else [],
        fontsize=6,
    )
    ax.tick_params(length=0)
    _titled(fig, heading, title)
    fig.savefig(path, dpi=DPI)
    return path


def reconstructions(
    inputs: np.ndarray, outputs: np.ndarray, path: str, title: str, per_row: int = 8
) -> str:
    """Test images (upper row of each pair) above their reconstructions (lower row)."""
    n = (len(inputs) // per_row) * per_row
    shape = inputs.shape[1:]
    pairs = np.stack(
        [inputs[:n].reshape(-1, per_row, *shape), outputs[:n].reshape(-1, per_row, *shape)], 1
    ).reshape(-1, per_row, *shape)
    labels = ["input", "reconstruction"] * (len(pairs) // 2)
    return image_grid(pairs, path, "Reconstructions (mean of p(x|z), z = encoding)", title, labels)


def samples(
    images: np.ndarray,
    path: str,
    title: str,
    heading: str = "Samples: mean of p(x|z), z ~ p(z)",
    per_row: int = 10,
) -> str:
    """Decoded samples from the prior, as a grid."""
    n = (len(images) // per_row) * per_row
    grid = images[:n].reshape(-1, per_row, *images.shape[1:])
    return image_grid(grid, path, heading, title)


def latent_manifold(
    images: np.ndarray, grid: np.ndarray, path: str, title: str, heading: str = "Latent manifold"
) -> str:
    """Decoded images (n, n, H, W, C) of an (n, n, 2) latent grid: the learned 2-D manifold."""
    col_labels = [f"{v:.2f}" for v in grid[0, :, 0]]
    row_labels = [f"z₂={v:.2f}" for v in grid[:, 0, 1]]
    return image_grid(
        images,
        path,
        f"{heading}: decoded grid through the prior's inverse CDF (z₁ across)",
        title,
        row_labels,
        col_labels,
    )


def interpolations(endpoints: np.ndarray, between: np.ndarray, path: str, title: str) -> str:
    """Rows: image A, decodings along the latent segment from A's code to B's, image B.

    Args:
      endpoints: (P, 2, H, W, C) the two test images of each row.
      between: (P, S, H, W, C) the decoded path, S steps from A's code to B's.
    """
    rows = np.concatenate([endpoints[:, :1], between, endpoints[:, 1:]], axis=1)
    steps = between.shape[1]
    col_labels = ["A"] + [f"t={t:.2f}" for t in np.linspace(0, 1, steps)] + ["B"]
    return image_grid(
        rows, path, "Interpolation between two test images in latent space", title, None, col_labels
    )


def denoising(
    clean: np.ndarray,
    corrupted: np.ndarray,
    restored: np.ndarray,
    path: str,
    title: str,
    heading: str = "Denoising",
) -> str:
    """The denoising triptych: clean, corrupted and restored rows for the same images."""
    grid = np.stack([clean, corrupted, restored])
    return image_grid(grid, path, heading, title, ["clean", "corrupted", "restored"])


def class_grid(
    images: np.ndarray, class_names: Sequence[str], path: str, heading: str, title: str
) -> str:
    """(L, S, H, W, C): row l decodes S latents with label l (the same latents in every row)."""
    return image_grid(images, path, heading, title, [f"y = {c}" for c in class_names])


def analogies(
    inputs: np.ndarray, outputs: np.ndarray, class_names: Sequence[str], path: str, title: str
) -> str:
    """Row i: test image i, then its latent code decoded with every label (style kept, class
    changed). inputs (N, H, W, C), outputs (N, L, H, W, C)."""
    rows = np.concatenate([inputs[:, None], outputs], axis=1)
    col_labels = ["input"] + [f"y={c}" for c in class_names]
    return image_grid(rows, path, "Analogies: one z, every label", title, None, col_labels)


def latent_scatter(
    points: np.ndarray,
    labels: np.ndarray | None,
    path: str,
    title: str,
    axis_labels: tuple[str, str] = ("z₁", "z₂"),
    background: np.ndarray | None = None,
    background_label: str = "prior samples",
    heading: str = "Encoded test images",
) -> str:
    """2-D points coloured by label (tab10), optionally over grey background points (e.g. prior
    samples, to see whether the encoded data fills the prior)."""
    fig = Figure(figsize=SCATTER_SIZE, dpi=DPI)
    ax = fig.add_axes((0.1, 0.08, 0.72, 0.8))
    if background is not None:
        ax.scatter(*np.asarray(background).T, s=2, c="0.75", label=background_label, zorder=0)
    points = np.asarray(points)
    if labels is None:
        ax.scatter(*points.T, s=4, c="tab:blue", label="test images")
    else:
        for c in np.unique(labels):
            ax.scatter(*points[labels == c].T, s=4, color=f"C{int(c) % 10}", label=str(int(c)))
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=3, frameon=False
    )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    _titled(fig, heading + ("" if labels is None else ", coloured by label"), title)
    fig.savefig(path, dpi=DPI)
    return path


# ---------------------------------------------------------------------------------------------
# Sweep figures
# ---------------------------------------------------------------------------------------------


def _log_axis(values: Sequence[Any]) -> bool:
    """Positive numbers go on a log axis; anything else is spaced evenly in the given order."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values)


@dataclasses.dataclass(frozen=True)
class Panel:
    """One panel of `metric_vs`: a metric's mean ± std at each x, in plotting order."""

    title: str
    y_label: str
    x: Sequence[Any]
    x_text: Sequence[str]  # the tick labels
    mean: Sequence[float]
    std: Sequence[float]  # NaN: no error bar (a single seed)


def metric_vs(panels: Sequence[Panel], x_label: str, heading: str, path: str) -> str:
    """Error bars of a metric vs a swept value, one panel per setting of the other swept values.

    Panels, not one shared axis: different likelihoods measure different data (binarized, grey,
    dequantized), so their numbers share no scale.
    """
    fig = Figure(figsize=(max(MIN_WIDTH_IN, 4 * len(panels)), 4.0))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        positions = list(panel.x) if _log_axis(panel.x) else list(range(len(panel.x)))
        errors = [0.0 if math.isnan(s) else s for s in panel.std]
        ax.errorbar(positions, panel.mean, yerr=errors, marker="o", capsize=3)
        if _log_axis(panel.x):
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(positions, panel.x_text)
        ax.set_xlabel(x_label)
        ax.set_ylabel(panel.y_label)
        ax.set_title(panel.title, fontsize=9)
        ax.grid(True, alpha=0.3)
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def training_curves(
    lines: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    x_label: str,
    y_label: str,
    heading: str,
    path: str,
) -> str:
    """Curves as in Kingma & Welling's Figure 2: `lines` maps a label to {split: (x, y)}; one colour
    per label (viridis, in the given order), one line style per split (the first split solid,
    the second dashed, ...), x on a log axis."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    styles = ("-", "--", ":", "-.")
    splits = list(dict.fromkeys(s for curves in lines.values() for s in curves))
    colors = matplotlib.colormaps["viridis"]
    for i, (label, curves) in enumerate(lines.items()):
        color = colors(i / max(1, len(lines) - 1))
        for j, split in enumerate(splits):
            if split in curves:
                xs, ys = curves[split]
                ax.plot(
                    xs,
                    ys,
                    styles[j % len(styles)],
                    color=color,
                    marker="o",
                    markersize=3,
                    label=label if j == 0 else None,
                )
    for j, split in enumerate(splits):  # legend entries for the line styles
        ax.plot([], [], styles[j % len(styles)], color="black", label=split)
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(heading, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path
