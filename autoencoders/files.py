"""Datasets from files: a folder of PNG / JPEG images, or numpy arrays (`.npz`, `.npy`).

`config.data.name` names them as `folder:PATH`, `npz:PATH` or `npy:PATH` (a relative PATH is read
from the working directory):

- `folder:PATH`: `*.png`, `*.jpg`, `*.jpeg` (hidden files and other files are ignored). Images
  directly in PATH have no labels (−1); class sub-folders instead (`PATH/cat/*.png`, ...) become
  labels 0, 1, ... in the sorted order of their names (`DataSpec.class_names`). Sub-folders
  `train/` and `test/` (each laid out as PATH is) are a predefined test split. Grey images (modes
  1, L, LA) stay grey; if any image is in colour, every image is read as RGB (a grey one repeated
  over the three channels); alpha is dropped.
- `npz:PATH`: arrays `x` (required), `y` (labels), and a predefined test split `x_test` (with
  `y_test` where `y` is given); no other names. `npy:PATH`: one array, x, no labels.

x is N×H×W (grey), N×H×W×C with C = 1 or 3, or N×D flat vectors (e.g. tabular data), shaped
(1, D, 1) as an image for the networks; integers 0..255 are 8-bit grey levels (kept as uint8),
floats must lie in [0, 1] (continuous values, kept as float32). Labels are integers >= 0, one per
image. Without a predefined test split, sources.fixed_split makes a fixed one.

Everything is read and checked at once, when `data.describe` checks the config, so a bad file is a
one-line ValueError naming it before a workdir is touched or anything compiles; the last dataset
read is kept (keyed by its files' sizes and modification times), so loading reads nothing again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile
import zlib

import numpy as np
from PIL import Image

PREFIXES = ("folder", "npz", "npy")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("P", "RGB", "RGBA", "CMYK", "YCbCr")
NPZ_ARRAYS = ("x", "y", "x_test", "y_test")
SPLIT_FOLDERS = ("test", "train")  # sorted, as os.scandir listings are compared against it
# Whole splits as read: {"train" | "test": (images (N, H, W, C), int32 labels)}.
Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Files:
    """A dataset read from files and checked."""

    splits: Splits  # "train", and "test" where the files define one
    num_classes: int  # 0 when unlabelled
    class_names: tuple[str, ...]  # folder classes: label i is class_names[i]; () for arrays


def is_file_dataset(name: str) -> bool:
    prefix, sep, _ = name.partition(":")
    return bool(sep) and prefix in PREFIXES


def read(name: str, image_size: int = 0) -> Files:
    """The dataset `name` names, read whole and checked (see the module docstring); folder images
    are centre-cropped and resized to `image_size` squares when it is > 0."""
    prefix, _, path = name.partition(":")
    where = f"config.data.name={name!r}"
    if not path:
        raise ValueError(f"{where}: give a path after '{prefix}:'.")
    path = os.path.expanduser(path)
    if prefix == "folder":
        if not os.path.isdir(path):
            raise ValueError(f"{where}: {path} is not a directory.")
        layout = tuple((split, tuple(files)) for split, files in _folder_layout(path, where))
        stamp = tuple(_stamp(f) for _, files in layout for f, _ in files)
        return _read_folder(where, layout, image_size, stamp)
    if not os.path.isfile(path):
        raise ValueError(f"{where}: no file {path}.")
    found = _read_arrays(where, path, prefix, _stamp(path))
    shape = found.splits["train"][0].shape[1:]
    if image_size and shape[0] == 1:
        raise ValueError(
            f"config.data.image_size={image_size}: {name} holds flat vectors, not images; set it "
            "to 0."
        )
    return found


def square(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) images centre-cropped to squares and resized to (N, size, size, C) (bicubic;
    floats clipped back into [0, 1]); images already that size are returned as they are."""
    height, width = images.shape[1:3]
    if (height, width) == (size, size):
        return images
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crops = images[:, top : top + side, left : left + side]
    out = np.stack(
        [
            np.stack([_resized(crop[..., c], size) for c in range(crop.shape[-1])], axis=-1)
            for crop in crops
        ]
    )
    return out if out.dtype == np.uint8 else np.clip(out, 0.0, 1.0)


def _resized(channel: np.ndarray, size: int) -> np.ndarray:
    """One (H, W) channel, uint8 (Pillow's mode L) or float32 (mode F), resized to size × size."""
    image = Image.fromarray(np.ascontiguousarray(channel))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))


def _stamp(path: str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return path, stat.st_mtime_ns, stat.st_size


# ---------------------------------------------------------------------------------------------
# Folders of images
# ---------------------------------------------------------------------------------------------


def _folder_layout(root: str, where: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """[("train" [, "test"], [(image file, class name or "")])], files sorted: the layout."""
    if _entries(root) == [(split, True) for split in SPLIT_FOLDERS]:
        return [
            (split, _split_files(os.path.join(root, split), where)) for split in ("train", "test")
        ]
    return [("train", _split_files(root, where))]


def _entries(folder: str) -> list[tuple[str, bool]]:
    """(name, is a directory) of the visible sub-folders and image files of `folder`, sorted."""
    return sorted(
        (e.name, e.is_dir())
        for e in os.scandir(folder)
        if not e.name.startswith(".") and (e.is_dir() or e.name.lower().endswith(IMAGE_SUFFIXES))
    )


def _split_files(folder: str, where: str) -> list[tuple[str, str]]:
    """[(image file, class name)] of one split: files directly in `folder` (class ""), or the
    files of each class sub-folder."""
    entries = _entries(folder)
    classes = [name for name, is_dir in entries if is_dir]
    direct = [os.path.join(folder, name) for name, is_dir in entries if not is_dir]
    if classes and direct:
        raise ValueError(
            f"{where}: {folder} holds both images ({os.path.basename(direct[0])}, ...) and "
            f"sub-folders ({classes[0]}, ...): put every image in a class sub-folder, or none."
        )
    if not classes:
        if not direct:
            raise ValueError(
                f"{where}: {folder} holds no PNG or JPEG files and no class sub-folders."
            )
        return [(f, "") for f in direct]
    files = []
    for name in classes:
        images = [n for n, is_dir in _entries(os.path.join(folder, name)) if not is_dir]
        if not images:
            raise ValueError(
                f"{where}: class folder {os.path.join(folder, name)} holds no PNG or JPEG files."
            )
        files += [(os.path.join(folder, name, n), name) for n in images]
    return files


@functools.lru_cache(maxsize=1)
def _read_folder(
    where: str, layout: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], image_size: int, stamp
) -> Files:
    """Every image of the layout (`_folder_layout`), decoded and checked; `stamp` (the files'
    sizes and times) only keys the cache."""
    del stamp
    paths = [path for _, files in layout for path, _ in files]
    images = [_read_image(path, where, image_size) for path in paths]
    for path, image in zip(paths, images, strict=True):
        if image.shape[:2] != images[0].shape[:2]:
            raise ValueError(
                f"{where}: images of different sizes ({paths[0]} is {_size(images[0])}, {path} is "
                f"{_size(image)}); set config.data.image_size to centre-crop and resize them to "
                "one square size."
            )
    classes = [{name for _, name in files} for _, files in layout]  # "": no class sub-folders
    if not classes[-1] <= classes[0]:
        raise ValueError(
            f"{where}: the test split's class folders ({_names(classes[-1])}) are not among the "
            f"train split's ({_names(classes[0])})."
        )
    class_names = tuple(sorted(classes[0] - {""}))
    label = {name: i for i, name in enumerate(class_names)} | {"": -1}
    channels = max(image.shape[-1] for image in images)  # any colour image: all RGB
    rgb = iter(np.repeat(image, channels // image.shape[-1], axis=-1) for image in images)
    splits = {
        split: (
            np.stack([next(rgb) for _ in files]),
            np.asarray([label[name] for _, name in files], np.int32),
        )
        for split, files in layout
    }
    return Files(splits=splits, num_classes=len(class_names), class_names=class_names)


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}×{image.shape[0]}"  # width × height, as image viewers give it


def _names(classes: set[str]) -> str:
    return ", ".join(sorted(name or "no sub-folders" for name in classes))


def _read_image(path: str, where: str, image_size: int) -> np.ndarray:
    """One file as uint8 (H, W, 1) grey or (H, W, 3) RGB levels, squared to `image_size`."""
    try:
        with Image.open(path) as image:
            if image.mode not in GREY_MODES + COLOUR_MODES:
                raise ValueError(f"mode {image.mode} is not 8-bit grey or colour")
            pixels = np.asarray(image.convert("L" if image.mode in GREY_MODES else "RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{where}: cannot read {path} as an image ({e}).") from None
    pixels = pixels.reshape(*pixels.shape[:2], -1)
    return square(pixels[None], image_size)[0] if image_size else pixels


# ---------------------------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _read_arrays(where: str, path: str, prefix: str, stamp) -> Files:
    """x [, y, x_test, y_test] of a .npz, or x of a .npy, checked; `stamp` only keys the cache."""
    del stamp
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray) != (prefix == "npy"):
            raise ValueError(f"not a .{prefix} file")
        if isinstance(loaded, np.ndarray):
            arrays = {"x": loaded}
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{where}: cannot read {path} ({e}).") from None
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    if unknown or "x" not in arrays:
        raise ValueError(
            f"{where}: {path} holds arrays {', '.join(sorted(arrays)) or 'none'}; expected x, "
            "and optionally y, x_test, y_test."
        )
    if "y_test" in arrays and "x_test" not in arrays:
        raise ValueError(f"{where}: {path} has y_test but no x_test.")
    if "x_test" in arrays and ("y" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{where}: give labels for both splits (y and y_test) or for neither.")
    splits = {}
    for split, suffix in (("train", ""), ("test", "_test")):
        if "x" + suffix in arrays:
            x = _images(arrays["x" + suffix], f"{where}: x{suffix}")
            y = arrays.get("y" + suffix)
            splits[split] = (x, _labels(y, len(x), f"{where}: y{suffix}"))
    if "test" in splits:
        (train, _), (test, _) = splits["train"], splits["test"]
        if train.shape[1:] != test.shape[1:] or train.dtype != test.dtype:
            raise ValueError(
                f"{where}: x is {train.dtype} of shape {train.shape[1:]} per example but x_test "
                f"is {test.dtype} of shape {test.shape[1:]}: they must match."
            )
    num_classes = max(int(y.max(initial=-1)) for _, y in splits.values()) + 1
    return Files(splits=splits, num_classes=num_classes, class_names=())


def _images(x: np.ndarray, what: str) -> np.ndarray:
    """An array as (N, H, W, C) uint8 levels or float32 values in [0, 1]; ValueErrors naming it."""
    if x.ndim == 2:
        x = x[:, None, :, None]  # flat vectors: one row of D "pixels"
    elif x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not x.size:
        raise ValueError(
            f"{what} has shape {x.shape}: give N×D vectors, N×H×W grey or N×H×W×C images with "
            "C = 1 or 3, N > 0."
        )
    if np.issubdtype(x.dtype, np.integer) and not np.issubdtype(x.dtype, np.bool_):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"{what} holds integers from {low} to {high}: integer images are grey levels "
                "0..255 (or give floats in [0, 1])."
            )
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} has dtype {x.dtype}: give integers 0..255 or floats in [0, 1].")
    bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
    if bad:
        raise ValueError(f"{what} holds {bad} NaN or Inf values.")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise ValueError(
            f"{what} holds floats from {low:.4g} to {high:.4g}: floats must lie in [0, 1] (scale "
            "them, or give integer grey levels 0..255)."
        )
    return x.astype(np.float32)


def _labels(y: np.ndarray | None, n: int, what: str) -> np.ndarray:
    """Labels as int32 (n,), −1 everywhere when `y` is None; ValueErrors naming the mismatch."""
    if y is None:
        return np.full(n, -1, np.int32)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what} has shape {y.shape}: expected one label per example, ({n},).")
    if not np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_):
        raise ValueError(f"{what} has dtype {y.dtype}: labels must be integers >= 0.")
    if n and int(y.min()) < 0:
        raise ValueError(f"{what} holds label {int(y.min())}: labels must be integers >= 0.")
    return y.astype(np.int32)
