"""report.html of a run and of a sweep: self-contained, and working in a real headless Chromium.

The pages are built from real tiny runs (a 2-D VAE, a 3-D conditional VAE whose plane is PCA's,
and a sweep of four VAEs with one failed run). In the browser: no console error and no request
but the file itself and inline data; the curves and tables render; sorting sorts; hovering the
explorer shows the decoder's output at the hovered point, and a test image with its
reconstruction; the label selector decodes with the chosen label. The browser tests skip with
one line where Debian's chromium and chromium-driver are missing (`tools/chromium.sh install`).
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from autoencoders import (
    baselines,
    evaluation,
    explorer,
    launch,
    metrics,
    pages,
    run_page,
    sweeps,
    training,
)
from tests import browser
from tests.helpers import REPO, tiny_config

OPTIONS = evaluation.Options(
    parts=("density", "reduction", "figures"), num_samples=4, report_ks=(1,), manifold_examples=300
)

requires_chromium = pytest.mark.skipif(browser.MISSING is not None, reason=str(browser.MISSING))


def trained(workdir: pathlib.Path, config) -> evaluation.Run:
    training.train_and_evaluate(config, str(workdir))
    evaluation.evaluate_run(str(workdir), OPTIONS)
    return evaluation.load_run(str(workdir))


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> evaluation.Run:
    return trained(tmp_path_factory.mktemp("vae") / "run", tiny_config("vae"))


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory) -> evaluation.Run:
    config = tiny_config("cvae", **{"model.latent_dim": 3, "train.num_epochs": 2})
    return trained(tmp_path_factory.mktemp("cvae") / "run", config)


SWEEP = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    good = sweeps.product(sweeps.axis("model.latent_dim", [2, 3]), sweeps.axis("seed", [0, 1]))
    return sweeps.chain(good, sweeps.point({"model.latent_dim": 0}))
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> pathlib.Path:
    """Four evaluated runs trained in this process, and a fifth whose launch failed (its log
    says why), then `experiments.report` as a user runs it."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny_sweep.py").write_text(SWEEP)
    flags = ["--config.network.hidden=(16,)", "--config.train.num_epochs=2"]
    plan = sweeps.plan_from_command(f"{root}/tiny_sweep.py:sweep=s,data=digits", str(root), flags)
    launch.write_manifest(plan)
    *good, bad = plan.runs
    for run in good:
        training.train_and_evaluate(launch.resolve_config(run.argv), run.workdir)
    os.makedirs(bad.workdir)
    pathlib.Path(bad.workdir, launch.LAUNCH_LOG).write_text(
        "=== a failed launch\nValueError: config.model.latent_dim=0: must be > 0.\n"
    )
    command = [sys.executable, "-m", "experiments.report", f"--sweep_dir={root}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


# ---------------------------------------------------------------------------------------------
# Without a browser
# ---------------------------------------------------------------------------------------------


def test_latent_plane_inverts_pca_and_keeps_2d_latents():
    codes = np.random.default_rng(0).normal(size=(200, 5)) @ np.diag([3, 2, 0.1, 0.1, 0.1])
    points, inverse = baselines.latent_plane(codes, "pca", 0)
    assert points.shape == (200, 2)
    back = inverse(points)  # the codes' projection onto the plane, in latent space
    np.testing.assert_allclose(baselines.latent_plane(back, "pca", 0)[0], points, atol=1e-9)
    assert np.abs(back - codes).max() < 1.0 < np.abs(codes).max()
    flat, identity = baselines.latent_plane(codes[:, :2], "pca", 0)
    np.testing.assert_array_equal(flat, codes[:, :2])
    np.testing.assert_array_equal(identity(flat), flat)
    assert baselines.latent_plane(codes[:40], "tsne", 0)[1] is None  # no inverse


def test_explorer_grid_is_the_decoder_mean_at_its_latents(cvae_run):
    run = cvae_run
    view = explorer.explore(run.model, run.params, run.x_test[:100], run.y_test[:100], "pca", 0)
    n = explorer.GRID_CONDITIONAL
    assert view.grid_latents.shape == (n * n, 3) and set(view.decoded) == set(range(10))
    for label in (0, 7):
        cond = run.model.condition({"y": jnp.full((n * n,), label)})
        expected = run.model.decode_mean(run.params, jnp.asarray(view.grid_latents), cond)
        np.testing.assert_allclose(view.decoded[label], expected, atol=1e-5)
    assert not np.allclose(view.decoded[0], view.decoded[7])  # the label matters


def test_run_page_is_self_contained(vae_run):
    page = pathlib.Path(vae_run.workdir, pages.PAGE_FILE).read_text()
    # Nothing loaded from elsewhere: every src and href of the page's elements (scripts' code
    # aside: BokehJS names a MathJax URL it would load for LaTeX labels, which we never use) is
    # inline data or a fragment. The browser tests watch for requests.
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert markup.count("<script") == 0 and page.count("<script") >= 3
    for attribute in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', markup):
        assert attribute.startswith(("data:", "#")), attribute[:80]
    assert "<link" not in page and "@import" not in page
    for heading in ("Config", "Training curves", "Evaluation (epoch 3)", "Latent explorer"):
        assert f">{heading}</h2>" in page
    # Every figure the evaluation wrote is on the page.
    for name in json.loads(pathlib.Path(vae_run.workdir, "eval.json").read_text())["figures"]:
        assert f"<figcaption>{name}</figcaption>" in page
    assert len(page) < 3_000_000  # BokehJS is ~1.3 MB of it


def test_report_cli_writes_a_run_page(vae_run, tmp_path):
    page = pathlib.Path(vae_run.workdir, pages.PAGE_FILE)
    page.unlink()
    command = [sys.executable, "-m", "experiments.report", f"--workdir={vae_run.workdir}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(str(page)) and page.stat().st_size > 1_000_000


# ---------------------------------------------------------------------------------------------
# In headless Chromium
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver():
    if browser.MISSING:
        pytest.skip(browser.MISSING)
    with browser.chromium() as d:
        yield d


def open_page(driver, path: str) -> None:
    """Opens a page and waits for BokehJS to render it; drops earlier log entries first."""
    driver.get("about:blank")
    browser.console_errors(driver), browser.requested_urls(driver)
    driver.get("file://" + os.path.abspath(path))
    for _ in range(100):
        if driver.execute_script(
            "return window.Bokeh !== undefined && Bokeh.documents.length > 0 &&"
            " Bokeh.documents[0].roots().every((root) => Bokeh.index.find_one(root))"
        ):
            return
        time.sleep(0.05)
    raise AssertionError("BokehJS rendered nothing")


def assert_clean(driver, path: str) -> None:
    """No console error, and no request but the page itself and inline data."""
    assert browser.console_errors(driver) == []
    page_url = "file://" + os.path.abspath(path)
    for url in browser.requested_urls(driver):
        assert url == page_url or url.startswith(("data:", "blob:")), url[:100]


def canvas_pixels(driver, element_id: str) -> np.ndarray:
    """A canvas's pixels as (H, W, 4) uint8."""
    width, height, flat = driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);"
        "return [c.width, c.height, Array.from(d.data)];",
        element_id,
    )
    return np.asarray(flat, np.uint8).reshape(height, width, 4)


def shown_image(pixels: np.ndarray, channels: int) -> np.ndarray:
    return pixels[..., :channels] if channels == 3 else pixels[..., :1]


def plot_point(driver, name: str, x: float, y: float) -> tuple[float, float]:
    """Where the data point (x, y) of the Bokeh plot `name` is, as an offset from the centre of
    its #explorer-plot container (Selenium's move_to_element_with_offset)."""
    return driver.execute_script(
        "const m = Bokeh.documents[0].get_model_by_name(arguments[0]);"
        "const v = Bokeh.index.find_one(m); const r = v.el.getBoundingClientRect();"
        "const c = document.getElementById('explorer-plot').getBoundingClientRect();"
        "return [r.left + v.frame.x_scale.compute(arguments[1]) - (c.left + c.width / 2),"
        "        r.top + v.frame.y_scale.compute(arguments[2]) - (c.top + c.height / 2)];",
        name,
        x,
        y,
    )


def data_per_pixel(driver, name: str) -> np.ndarray:
    """The data units one screen pixel spans on the Bokeh plot `name`, (x, y)."""
    return np.abs(
        driver.execute_script(
            "const v = Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name(arguments[0]));"
            "const [x, y] = [v.frame.x_scale, v.frame.y_scale];"
            "return [x.invert(1) - x.invert(0), y.invert(1) - y.invert(0)];",
            name,
        )
    )


def hover(driver, dx: float, dy: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    plot = driver.find_element(By.ID, "explorer-plot")
    ActionChains(driver).move_to_element_with_offset(plot, round(dx), round(dy)).perform()
    time.sleep(0.2)


def decoded_at_cursor(driver, run: evaluation.Run) -> tuple[np.ndarray, np.ndarray]:
    """(what the page shows, the decoder's mean at the latent point the page says it shows)."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    canvas = driver.find_element(By.ID, "explorer-decoded")
    z = jnp.asarray([json.loads(canvas.get_attribute("data-z"))], jnp.float32)
    label = int(canvas.get_attribute("data-label"))
    cond = None if label < 0 else run.model.condition({"y": jnp.asarray([label])})
    expected = pages.to_uint8(run.model.decode_mean(run.params, z, cond))[0]
    channels = expected.shape[-1]
    return shown_image(canvas_pixels(driver, "explorer-decoded"), channels), expected


@requires_chromium
def test_run_page_in_chromium(driver, vae_run):
    run, path = vae_run, os.path.join(vae_run.workdir, pages.PAGE_FILE)
    open_page(driver, path)
    # The curves: one plot per metric, each with its train and test lines.
    lines = driver.execute_script(
        "return Bokeh.documents[0].get_model_by_name('curve-neg_elbo').renderers.length"
    )
    assert lines == 4  # train and test, each a line and its points
    rows = driver.execute_script("return document.querySelectorAll('#eval-table tbody tr').length")
    assert rows >= 5
    assert "nats per image" in driver.execute_script(
        "return document.getElementById('eval-table').textContent"
    )

    # The cursor anywhere on the plane: the decoder's mean at the grid point nearest to it.
    data = json.loads(driver.find_element("id", "explorer-data").get_attribute("textContent"))
    grid_x, grid_y = np.asarray(data["grid_x"]), np.asarray(data["grid_y"])
    step = np.array([grid_x[1] - grid_x[0], grid_y[1] - grid_y[0]])
    for fx, fy in ((0.5, 0.5), (0.2, 0.8), (0.85, 0.1)):
        target = np.array([np.quantile(grid_x, fx), np.quantile(grid_y, fy)])
        hover(driver, *plot_point(driver, "explorer", *target))
        shown, expected = decoded_at_cursor(driver, run)
        assert np.abs(shown.astype(int) - expected).max() <= 1
        z = json.loads(driver.find_element("id", "explorer-decoded").get_attribute("data-z"))
        # 2-D: z is the grid point nearest the cursor, which sits within a pixel or two of the
        # target (Selenium places it on whole pixels).
        slack = step / 2 + 2 * data_per_pixel(driver, "explorer")
        assert np.all(np.abs(np.asarray(z) - target) <= slack)
    # Two different places decode to different images, and the page says which z.
    assert "decoder mean at z = (" in driver.find_element("id", "explorer-z").text

    # A hovered point: its test image and reconstruction.
    points = driver.execute_script(
        "const s = Bokeh.documents[0].get_model_by_name('explorer').renderers[0].data_source;"
        "return [s.data.x, s.data.y];"
    )
    i = 17
    hover(driver, *plot_point(driver, "explorer", points[0][i], points[1][i]))
    index = int(driver.find_element("id", "explorer-image").get_attribute("data-index"))
    # The nearest point under the cursor: another point may sit on the same pixel.
    assert np.hypot(points[0][index] - points[0][i], points[1][index] - points[1][i]) < 0.05
    test_index = data["indices"][index]  # the hovered image's index in the test split
    x = np.asarray(run.x_test[test_index : test_index + 1])
    channels = x.shape[-1]
    image = shown_image(canvas_pixels(driver, "explorer-image"), channels)
    np.testing.assert_array_equal(image, pages.to_uint8(x)[0])
    recon = pages.to_uint8(run.model.reconstruct(run.params, jnp.asarray(x), None))[0]
    shown = shown_image(canvas_pixels(driver, "explorer-recon"), channels)
    assert np.abs(shown.astype(int) - recon).max() <= 1
    assert data["labels"][index] == int(run.y_test[test_index])
    assert f"test image {test_index}," in driver.find_element("id", "explorer-point").text
    assert_clean(driver, path)


@requires_chromium
def test_conditional_page_decodes_with_the_chosen_label(driver, cvae_run):
    from selenium.webdriver.support.ui import Select  # noqa: PLC0415

    path = os.path.join(cvae_run.workdir, pages.PAGE_FILE)
    open_page(driver, path)
    hover(driver, 40, -30)
    shown = {}
    for label in ("0", "7"):
        Select(driver.find_element("id", "explorer-label")).select_by_value(label)
        time.sleep(0.1)
        assert driver.find_element("id", "explorer-decoded").get_attribute("data-label") == label
        shown[label], expected = decoded_at_cursor(driver, cvae_run)
        assert np.abs(shown[label].astype(int) - expected).max() <= 1
        z = json.loads(driver.find_element("id", "explorer-decoded").get_attribute("data-z"))
        assert len(z) == 3  # a point of the PCA plane, in the 3-D latent space
    assert not np.array_equal(shown["0"], shown["7"])
    assert_clean(driver, path)


@requires_chromium
def test_sweep_page_in_chromium(driver, sweep):
    path = sweep / "report" / pages.PAGE_FILE
    open_page(driver, str(path))
    table = driver.find_element("id", "runs-table")
    headers = [th.text for th in table.find_elements("css selector", "thead th")]
    column = headers.index("test/neg_elbo (nats per image)")

    def values() -> list[float]:
        cells = table.find_elements("css selector", f"tbody tr td:nth-child({column + 1})")
        return [float(c.get_attribute("data-value")) for c in cells]

    assert len(values()) == 2 and all("±" in c.text for c in table.find_elements(
        "css selector", f"tbody tr td:nth-child({column + 1})"))  # fmt: skip
    header = table.find_elements("css selector", "thead th")[column]
    header.click()
    assert values() == sorted(values())
    header.click()
    assert values() == sorted(values(), reverse=True)

    # Links to each run's page, which exist; the curves of all four runs; the failed run's log.
    links = [a.get_attribute("href") for a in table.find_elements("css selector", "a")]
    assert len(links) == 4
    assert all(os.path.exists(link.removeprefix("file://")) for link in links)
    renderers = driver.execute_script(
        "return Bokeh.documents[0].roots()[0].children.length"  # the grid of curve plots
    )
    assert renderers >= 1
    unfinished = driver.find_element("id", "unfinished").get_attribute("textContent")
    assert "latent_dim=0" in unfinished and "must be > 0" in unfinished
    assert_clean(driver, str(path))


@pytest.mark.parametrize(
    "family, arg",
    [("ae", "data=digits,latent=1"), ("aae", "data=digits"), ("m2", "data=digits")],
)
def test_page_of_each_kind_of_model(family, arg, tmp_path):
    """A deterministic AE with a 1-D code, an AAE (its own prior) and M2 (conditional, with a
    latent larger than 2, so the PCA plane): each gets a page whose explorer decodes its plane."""
    config = importlib.import_module(f"configs.{family}").get_config(arg)
    config.network.hidden = (32,)
    config.train.num_epochs = 1
    training.train_and_evaluate(config, str(tmp_path))
    options = evaluation.Options(manifold_examples=100)
    page = pathlib.Path(run_page.write_run_page_of(str(tmp_path), options)).read_text()
    source = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page)
    data = json.loads(source[1])
    assert len(data["indices"]) == 100 and len(data["grid_latents"]) == data["grid_columns"] ** 2
    assert len(data["grid_latents"][0]) == config.model.latent_dim
    assert set(data["decoded"]) == ({str(k) for k in range(10)} if family == "m2" else {"-1"})
    assert ('id="explorer-label"' in page) == (family == "m2")


def test_evaluation_figures_are_tensorboard_images(vae_run):
    """Each figure of eval.json is an image in the run's TensorBoard, at the evaluated epoch's
    step (the step training logged for it)."""
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415
    from tensorboard.util import tensor_util  # noqa: PLC0415

    events = event_accumulator.EventAccumulator(
        os.path.join(vae_run.workdir, "tensorboard"), size_guidance={"images": 0, "tensors": 0}
    )
    events.Reload()
    figures = json.loads(pathlib.Path(vae_run.workdir, "eval.json").read_text())["figures"]
    tags = {f"figures/{pathlib.Path(f).stem}" for f in figures}
    # Images as TF2's summary API writes them: tensors [width, height, PNG] for the images plugin.
    stored = set(events.Tags()["tensors"])
    assert tags <= stored, tags - stored
    for tag in tags:
        assert events.SummaryMetadata(tag).plugin_data.plugin_name == "images"
    (event,) = events.Tensors("figures/reconstructions")
    steps = [row["step"] for row in metrics.read(os.path.join(vae_run.workdir, "metrics.jsonl"))]
    assert event.step == max(steps)
    width, height, png = tensor_util.make_ndarray(event.tensor_proto)
    path = pathlib.Path(vae_run.workdir, "figures", "reconstructions.png")
    assert png == path.read_bytes()
    assert (int(width), int(height)) == Image.open(path).size


def test_each_run_writes_its_hparams_for_tensorboards_dashboard(sweep):
    """The HParams dashboard compares a sweep's runs: each run's TensorBoard holds its settings."""
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415
    from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: PLC0415

    seen = {}
    for run_dir in sorted(p for p in sweep.iterdir() if (p / "tensorboard").is_dir()):
        events = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
        events.Reload()
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                  for k, v in info.hparams.items()}  # fmt: skip
        seen[run_dir.name] = (values["model.latent_dim"], values["seed"])
        assert values["data.name"] == "digits" and values["network.hidden"] == "[16]"
    assert seen == {
        "latent_dim=2,seed=0": (2, 0),
        "latent_dim=2,seed=1": (2, 1),
        "latent_dim=3,seed=0": (3, 0),
        "latent_dim=3,seed=1": (3, 1),
    }
