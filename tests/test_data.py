"""Loading (embedded digits, TFDS mock and real data) and on-device preprocessing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from autoencoders import data
from configs import common
from tests import helpers
from tests.helpers import requires_frey_face, requires_shared_data, shared_tfds_dir


def data_config(**kw):
    cfg = common.base_config().data
    cfg.update(kw)
    return cfg


def test_digits_loads_into_device_memory_with_labels():
    ds = data.load(data_config(name="digits", valid_size=100))
    assert ds.spec.shape == (8, 8, 1) and ds.spec.num_levels == 17 and ds.spec.num_classes == 10
    assert ds.train.images.dtype == jnp.uint8 and isinstance(ds.train.images, jax.Array)
    assert ds.train.size + ds.valid.size + ds.test.size == 1797
    assert int(ds.train.images.max()) == 16 and int(ds.train.labels.min()) == 0


def test_validation_split_is_deterministic_and_disjoint():
    a = data.load(data_config(name="digits", valid_size=200, split_seed=3))
    b = data.load(data_config(name="digits", valid_size=200, split_seed=3))
    c = data.load(data_config(name="digits", valid_size=200, split_seed=4))
    np.testing.assert_array_equal(a.valid.images, b.valid.images)
    assert not np.array_equal(a.valid.images, c.valid.images)
    train = {x.tobytes() for x in np.asarray(a.train.images)}
    valid = [x.tobytes() for x in np.asarray(a.valid.images)]
    # digits has a few duplicate images, so compare by count of overlaps rather than exact zero
    assert sum(v in train for v in valid) < 5


def test_dynamic_binarization_is_fresh_and_unbiased():
    images = jnp.full((2000, 4, 4, 1), 64, jnp.uint8)  # intensity 64/255
    x1 = data.preprocess(images, jax.random.key(1), 256, "dynamic", False)
    x2 = data.preprocess(images, jax.random.key(2), 256, "dynamic", False)
    assert set(np.unique(x1)) == {0.0, 1.0}
    assert not np.array_equal(x1, x2)
    assert float(x1.mean()) == pytest.approx(64 / 255, abs=0.01)


def test_dequantization_stays_in_its_level_bin():
    images = jnp.arange(256, dtype=jnp.uint8).reshape(1, 16, 16, 1).repeat(8, 0)
    x = data.preprocess(images, jax.random.key(0), 256, "none", True)
    assert float(x.min()) >= 0 and float(x.max()) < 1
    np.testing.assert_array_equal(np.floor(np.asarray(x) * 256), np.asarray(images))
    assert np.unique(np.asarray(x)).size > 256  # continuous, not on the grid


def test_grey_levels_scale_to_unit_interval():
    images = jnp.array([0, 8, 16], jnp.uint8).reshape(1, 3, 1, 1)
    x = data.preprocess(images, jax.random.key(0), 17, "none", False)
    np.testing.assert_allclose(np.ravel(x), [0.0, 0.5, 1.0])


def test_static_binarization_is_fixed_at_load_time():
    a = data.load(data_config(name="digits", binarization="static"))
    b = data.load(data_config(name="digits", binarization="static"))
    assert a.spec.num_levels == 2 and a.spec.kind == "binary"
    assert set(np.unique(np.asarray(a.train.images))) == {0, 1}
    np.testing.assert_array_equal(a.train.images, b.train.images)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("binarization", "sometimes", "none, static, dynamic"),
        ("valid_size", -1, "valid_size"),
        ("eval_split", "train", "eval_split"),
        ("name", "", "data.name"),
    ],
)
def test_bad_data_config_is_named(field, value, message):
    cfg = data_config(name="digits")
    cfg[field] = value
    with pytest.raises(ValueError, match=message):
        data.check_config(cfg)


def test_dequantize_with_binarization_is_refused():
    with pytest.raises(ValueError, match="dequantize"):
        data.check_config(data_config(name="digits", binarization="dynamic", dequantize=True))


def test_unknown_tfds_name_is_a_config_error():
    with pytest.raises(ValueError, match="not one of digits, frey_face and not a TFDS dataset"):
        data.describe(data_config(name="no_such_dataset_xyz"))


def test_tfds_loading_under_mock_data():
    with tfds.testing.mock_data(num_examples=64):
        ds = data.load(data_config(name="mnist", valid_size=16))
    assert ds.spec.shape == (28, 28, 1) and ds.spec.num_classes == 10
    assert ds.train.size == 48 and ds.valid.size == 16 and ds.test.size == 64


@requires_shared_data
def test_real_mnist_and_binarized_mnist_from_shared():
    mnist = data.load(data_config(name="mnist", data_dir=shared_tfds_dir()))
    assert (mnist.train.size, mnist.test.size) == (60_000, 10_000)
    assert mnist.spec.num_levels == 256 and int(mnist.train.images.max()) == 255
    binary = data.load(data_config(name="binarized_mnist", data_dir=shared_tfds_dir()))
    assert (binary.train.size, binary.test.size) == (50_000, 10_000)
    assert binary.spec.kind == "binary" and binary.spec.num_classes == 0
    assert int(binary.test.labels.max()) == -1


@requires_frey_face
def test_frey_face_loads_every_image_as_its_published_column(monkeypatch):
    from scipy.io import loadmat

    monkeypatch.setenv("AUTOENCODERS_DATA_DIR", helpers.frey_face_dir())
    ds = data.load(data_config(name="frey_face", dequantize=True))
    assert ds.spec.shape == (28, 20, 1) and ds.spec.num_classes == 0
    assert ds.spec.num_levels == 256 and ds.spec.kind == "dequantized"
    assert (ds.train.size, ds.test.size) == (1572, 393)
    assert int(ds.train.labels.max()) == int(ds.test.labels.min()) == -1
    # Image i is column i of `ff` read row by row as 28×20 (the file's documented layout).
    columns = loadmat(f"{helpers.frey_face_dir()}/frey_face/frey_rawface.mat")["ff"].T
    loaded = np.concatenate([np.asarray(ds.train.images), np.asarray(ds.test.images)])
    as_rows = sorted(image.tobytes() for image in loaded.reshape(len(loaded), -1))
    assert as_rows == sorted(column.astype(np.uint8).tobytes() for column in columns)


def test_frey_face_file_that_is_not_the_published_one_is_refused(tmp_path, monkeypatch):
    (tmp_path / "frey_face").mkdir()
    (tmp_path / "frey_face" / "frey_rawface.mat").write_bytes(b"not the file")
    monkeypatch.setenv("AUTOENCODERS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="frey_face.*md5"):
        data.load(data_config(name="frey_face", dequantize=True))


@requires_frey_face
def test_frey_face_trains_a_gaussian_vae(tmp_path, monkeypatch):
    from autoencoders import metrics, training
    from configs import vae

    monkeypatch.setenv("AUTOENCODERS_DATA_DIR", helpers.frey_face_dir())
    config = vae.get_config("data=frey_face,likelihood=gaussian_learned,latent=2")
    config.train.num_epochs, config.train.eval_every, config.checkpoint.every_epochs = 3, 3, 3
    training.train_and_evaluate(config, str(tmp_path))
    path = str(tmp_path / "metrics.jsonl")
    test, train = metrics.latest_by_epoch(path, "test")[3], metrics.latest_by_epoch(path, "train")
    # A density on dequantized grey levels: finite, and training lowers the bound.
    assert np.isfinite(test["neg_elbo"]) and test["kl"] > 0
    assert train[3]["loss"] < train[1]["loss"]
