"""What every part of an evaluation shares: the form of its numbers and the choices behind them.

Every number in eval.json is a `quantity`, a value with its unit; a mean over images (`per_image`)
adds its standard error and the number of images. The images a part measures are a fixed random
subset (`subset_indices`), and each random stream of an evaluation is the evaluation key folded in
with its own salt (the `SALT_*` constants), so the same `Options.seed` gives the same numbers
whichever parts run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# Salts of the evaluation's independent random streams: fold_in(key(seed), salt).
SALT_PREPROCESS_TRAIN, SALT_PREPROCESS_TEST, SALT_DENSITY, SALT_TERMS, SALT_FIGURES = range(5)


def option(default: Any, help: str) -> Any:  # noqa: A002 - the name flags use
    """A dataclass field with its flag's help text (`experiments.cli.define_dataclass_flags`).
    Defined here, not in evaluation.py, so that benchmarks.run need not import evaluation."""
    return dataclasses.field(default=default, metadata={"help": help})


def quantity(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """One number of eval.json, with its unit."""
    return {"value": float(value), "unit": unit, **extra}


def per_image(values: np.ndarray, unit: str) -> dict[str, Any]:
    """Mean over images with its standard error (std over images, ddof=1, / √N)."""
    values = np.asarray(values, np.float64)
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
    return quantity(values.mean(), unit, stderr=stderr, num_images=len(values))


def subset_indices(total: int, size: int, seed: int) -> np.ndarray:
    """`size` distinct indices out of `total`, fixed by `seed` (sorted; all if size >= total).

    Random rather than the first `size`: some test splits are sorted by class.
    """
    if size <= 0 or size >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size, replace=False))
