"""Named datasets: where their bytes come from. TFDS image datasets (downloaded by TFDS when its
data dir lacks them, failing in seconds with one line when there is no network), scikit-learn's
embedded 8×8 `digits`, and Frey Face (downloaded once into $AUTOENCODERS_DATA_DIR). Each gives
whole splits as numpy arrays; `data.py` turns them into a `Dataset`, files of the user's own
(`folder:`, `npz:`, `npy:`) come from `files.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import numpy as np

from autoencoders import files

Splits = files.Splits


FIXED_SPLIT_MIN = 5  # examples a `fixed_split` needs for one test example


def fixed_split(images: np.ndarray, labels: np.ndarray) -> Splits:
    """A dataset without its own test split: a fixed random 80/20 train/test split (seed 0)."""
    order = np.random.default_rng(0).permutation(len(images))
    num_test = len(images) // 5
    test, train = order[:num_test], order[num_test:]
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def _load_digits() -> Splits:
    """scikit-learn's 8×8 digits (1,797 images, 17 grey levels), `fixed_split`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.uint8)[..., None]  # levels 0..16
    labels = digits.target.astype(np.int32)
    return fixed_split(images, labels)


# Frey Face (B. Frey, via S. Roweis): 1,965 grey-level 28×20 face images, no labels; the
# real-valued dataset of Kingma & Welling (2014). Looked up as frey_face/frey_rawface.mat under
# $AUTOENCODERS_DATA_DIR (default ~/.cache/autoencoders), downloaded there when missing.
FREY_FACE_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FACE_MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"
DOWNLOAD_TIMEOUT_S = 60  # a connection that stalls this long is a failed download
# TFDS retries each file 10 times with exponential back-off (3.5 minutes before it gives up when
# there is no network at all); a few quick retries ride out a hiccup (about 1 s of back-off).
TFDS_DOWNLOAD_RETRIES = 3
# What a download raises when the network is down or the host unreachable (urllib and requests;
# requests' own ConnectionError and Timeout are added where TFDS is imported).
NETWORK_ERRORS = (urllib.error.URLError, socket.gaierror, ConnectionError, TimeoutError)


def files_dir() -> str:
    """Where the datasets that TFDS does not have live: $AUTOENCODERS_DATA_DIR or a user cache."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "autoencoders")
    return os.environ.get("AUTOENCODERS_DATA_DIR") or default


def _md5(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def _load_frey_face() -> Splits:
    """Frey Face as (N, 28, 20, 1) uint8 levels 0..255, no labels, `fixed_split`."""
    from scipy.io import loadmat

    path = os.path.join(files_dir(), "frey_face", "frey_rawface.mat")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with (
                urllib.request.urlopen(FREY_FACE_URL, timeout=DOWNLOAD_TIMEOUT_S) as response,
                open(path + ".part", "wb") as f,
            ):
                shutil.copyfileobj(response, f)
        except NETWORK_ERRORS as e:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + ".part")
            http = isinstance(e, urllib.error.HTTPError)
            raise ValueError(
                f"cannot download frey_face: {'the server refused' if http else 'no network'} "
                f"({_reason(e)}); put frey_rawface.mat "
                f"(from {FREY_FACE_URL}) in {os.path.dirname(path)} or set AUTOENCODERS_DATA_DIR "
                "to a folder holding frey_face/frey_rawface.mat."
            ) from e
        os.replace(path + ".part", path)
    if _md5(path) != FREY_FACE_MD5:
        raise ValueError(f"config.data.name='frey_face': {path} is not the published file (md5).")
    faces = loadmat(path)["ff"]  # (560, 1965): column i is image i, row-major 28×20
    images = faces.T.reshape(-1, 28, 20, 1).astype(np.uint8)
    return fixed_split(images, np.full(len(images), -1, np.int32))


@dataclasses.dataclass(frozen=True)
class LocalDataset:
    """A dataset that is not in TFDS: its spec's facts, and a loader of whole splits."""

    shape: tuple[int, int, int]
    num_levels: int
    num_classes: int
    load: Callable[[], Splits]


LOCAL_DATASETS: dict[str, LocalDataset] = {
    "digits": LocalDataset((8, 8, 1), 17, 10, _load_digits),
    "frey_face": LocalDataset((28, 20, 1), 256, 0, _load_frey_face),
}


def load_tfds(name: str, data_dir: str | None) -> Splits:
    """Whole train and test splits of a TFDS image dataset as numpy arrays."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # TF only reads files; keep it off the accelerator
    builder = tfds.builder(name, data_dir=data_dir or None)
    with _failing_fast_offline(name):
        builder.download_and_prepare()  # nothing to do when the data dir holds it
    out = {}
    for split in ("train", "test"):
        # Finite batches, concatenated: `batch_size=-1` aborts under tfds.testing.mock_data.
        ds = builder.as_dataset(split=split, shuffle_files=False)
        images, labels = [], []
        for example in tfds.as_numpy(ds.batch(10_000)):
            images.append(example["image"])
            if "label" in example:
                labels.append(example["label"])
        images = np.concatenate(images)
        if images.ndim == 3:
            images = images[..., None]
        labels = (
            np.concatenate(labels).astype(np.int32)
            if labels
            else np.full(len(images), -1, np.int32)
        )
        out[split] = (images.astype(np.uint8), labels)
    return out


@contextlib.contextmanager
def _failing_fast_offline(name: str) -> Iterator[None]:
    """TFDS downloads with `TFDS_DOWNLOAD_RETRIES` retries and urllib3's retry warnings muted; a
    download that fails on the network is a one-line ValueError saying where data can come from."""
    import requests
    from tensorflow_datasets.core.download import downloader

    retries, downloader.MAX_RETRIES = downloader.MAX_RETRIES, TFDS_DOWNLOAD_RETRIES
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    level = urllib3_log.level
    urllib3_log.setLevel(logging.ERROR)
    try:
        yield
    except (*NETWORK_ERRORS, requests.ConnectionError, requests.Timeout) as e:
        # TFDS's threads may still be retrying the other files: their warnings stay muted.
        raise ValueError(
            f"cannot download {name}: no network ({_reason(e)}); set TFDS_DATA_DIR (or "
            f"config.data.data_dir) to a prepared TFDS data dir (one that holds {name}/)."
        ) from e
    else:
        urllib3_log.setLevel(level)
    finally:
        downloader.MAX_RETRIES = retries


def _reason(error: BaseException) -> str:
    """A failed download's cause in a few words: the host, when known, and the innermost error."""
    host, seen = None, set()
    while id(error) not in seen:
        seen.add(id(error))
        host = host or getattr(getattr(error, "pool", None), "host", None)  # urllib3's pool
        inner = error.__cause__ or error.__context__ or getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    text = str(error) or type(error).__name__
    return f"{host}: {text}" if host else text
