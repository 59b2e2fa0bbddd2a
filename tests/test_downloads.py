"""Downloads on a fresh machine: with an empty TFDS data dir the README's datasets get as far as
the network (every import TFDS needs is installed), prepare from downloaded files, and without a
network fail in seconds with one line. No test contacts a host: name resolution is made to fail,
or TFDS's download manager is replaced."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from autoencoders import data
from configs import common

README_DATASETS = ("mnist", "fashion_mnist", "binarized_mnist")


class Sentinel(Exception):
    """Raised in place of a download."""


def tfds_config(name: str, data_dir):
    config = common.base_config()
    common.apply_dataset(config, name)
    config.data.data_dir = str(data_dir)
    return config.data


@pytest.fixture
def no_network(monkeypatch):
    """Name resolution fails at once, as on a machine without a network; nothing is contacted."""

    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)


@pytest.mark.parametrize("name", README_DATASETS)
def test_empty_data_dir_reaches_the_download_step(name, tmp_path, monkeypatch):
    def download(self, urls):
        raise Sentinel(sorted(urls.values()))

    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", download)
    with pytest.raises(Sentinel, match="http"):
        data.load(tfds_config(name, tmp_path))


def _fake_downloads(folder) -> dict[str, str]:
    """Small files in the published formats: MNIST's IDX files and binarized MNIST's .amat."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 12), ("test", 4)):
        images, labels = folder / f"{split}_data", folder / f"{split}_labels"
        images.write_bytes(bytes(16) + rng.integers(0, 256, n * 784, np.uint8).tobytes())
        labels.write_bytes(bytes(8) + rng.integers(0, 10, n, np.uint8).tobytes())
        files.update({f"{split}_data": str(images), f"{split}_labels": str(labels)})
    for split in ("train", "validation", "test"):
        amat = folder / f"{split}.amat"
        np.savetxt(amat, rng.integers(0, 2, (5, 784)), fmt="%d")
        files[f"amat_{split}_data"] = str(amat)
    return files


@pytest.mark.parametrize("name", README_DATASETS)
def test_prepares_from_downloaded_files(name, tmp_path, monkeypatch):
    files = _fake_downloads(tmp_path)

    def download(self, urls):
        amat = any(url.endswith(".amat") for url in urls.values())
        return {k: files[f"amat_{k}" if amat else k] for k in urls}

    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", download)
    monkeypatch.setattr(tfds_mnist, "_TRAIN_EXAMPLES", 12)
    monkeypatch.setattr(tfds_mnist, "_TEST_EXAMPLES", 4)
    ds = data.load(tfds_config(name, tmp_path / "tfds"))
    assert ds.test.images.shape[1:] == (28, 28, 1)
    assert (ds.train.size, ds.test.size) == ((5, 5) if name == "binarized_mnist" else (12, 4))


def test_no_network_is_one_line_in_seconds(tmp_path, no_network):
    retries = downloader.MAX_RETRIES
    start = time.perf_counter()
    with pytest.raises(ValueError) as error:
        data.load(tfds_config("mnist", tmp_path))
    seconds = time.perf_counter() - start
    message = str(error.value)
    assert message.startswith("cannot download mnist: no network (storage.googleapis.com: ")
    assert "set TFDS_DATA_DIR (or config.data.data_dir) to a prepared TFDS data dir" in message
    assert "\n" not in message and seconds < 20
    assert retries == downloader.MAX_RETRIES  # TFDS's own setting is back


def test_frey_face_without_network_is_one_line(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("AUTOENCODERS_DATA_DIR", str(tmp_path))
    config = common.base_config()
    common.apply_dataset(config, "frey_face")
    with pytest.raises(ValueError, match="cannot download frey_face: no network") as error:
        data.load(config.data)
    assert "\n" not in str(error.value) and "AUTOENCODERS_DATA_DIR" in str(error.value)
    assert list((tmp_path / "frey_face").iterdir()) == []  # no partial file left
