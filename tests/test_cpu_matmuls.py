"""XLA:CPU's matrix-product library per run (autoencoders/cpu_matmuls.py): the same numbers
either way, Eigen kept only where a probe of the run's own epoch measures it clearly faster, the
choice recorded and kept on resuming, a bad AUTOENCODERS_CPU_MATMULS refused early."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import cpu_matmuls, epoch, models, training
from tests.helpers import tiny_config, tiny_conv_vae

cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's options")


class FakeClock:
    """time.perf_counter for `choose`: each probe call advances it by that library's cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_probe(clock: FakeClock, seconds: dict[str, float], built: list[str]):
    def probe(options):
        kernels = next(name for name, opts in cpu_matmuls.OPTIONS.items() if opts == options)
        built.append(kernels)

        def call():
            clock.now += seconds[kernels]

        return call

    return probe


@cpu_only
@pytest.mark.parametrize(
    "eigen_s, expected", [(0.080, "eigen"), (0.097, "ynnpack"), (0.120, "ynnpack")]
)
def test_eigen_is_kept_only_when_clearly_faster(monkeypatch, eigen_s, expected):
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")
    clock, built = FakeClock(), []
    monkeypatch.setattr(cpu_matmuls.time, "perf_counter", clock)
    probe = fake_probe(clock, {"ynnpack": 0.100, "eigen": eigen_s}, built)
    choice = cpu_matmuls.choose(probe, "a test program")
    assert choice.kernels == expected
    assert choice.seconds == pytest.approx({"ynnpack": 0.100, "eigen": eigen_s})
    assert choice.options == dict(cpu_matmuls.OPTIONS[expected])
    assert "a test program" in choice.reason and cpu_matmuls.ENV in choice.reason
    assert built == ["ynnpack", "eigen"]


@cpu_only
def test_short_probe_calls_are_repeated_within_each_sample(monkeypatch):
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")
    clock, built = FakeClock(), []
    monkeypatch.setattr(cpu_matmuls.time, "perf_counter", clock)
    probe = fake_probe(clock, {"ynnpack": 0.002, "eigen": 0.001}, built)
    choice = cpu_matmuls.choose(probe, "a test program")
    assert choice.kernels == "eigen"
    assert choice.seconds == pytest.approx({"ynnpack": 0.002, "eigen": 0.001})  # per call
    assert "samples of 50 call(s)" in choice.reason  # 0.1 s / 0.002 s


@cpu_only
def test_a_library_that_does_not_compile_leaves_xla_s_default(monkeypatch):
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")

    def probe(options):
        if options:
            raise RuntimeError("No such compile option: xla_cpu_experimental_ynn_fusion_type")
        return lambda: None

    choice = cpu_matmuls.choose(probe, "a test program")
    assert choice.kernels == "ynnpack" and choice.options == {}
    assert "could not be compiled" in choice.reason


@cpu_only
@pytest.mark.parametrize("kernels", ["ynnpack", "eigen"])
def test_a_fixed_choice_probes_nothing(monkeypatch, kernels):
    monkeypatch.setenv(cpu_matmuls.ENV, kernels)

    def probe(options):
        raise AssertionError("probed although AUTOENCODERS_CPU_MATMULS fixes the choice")

    choice = cpu_matmuls.choose(probe, "a test program")
    assert choice.kernels == kernels and choice.options == dict(cpu_matmuls.OPTIONS[kernels])


def test_an_unknown_library_is_refused_before_anything_compiles(monkeypatch):
    monkeypatch.setenv(cpu_matmuls.ENV, "mkl")
    with pytest.raises(ValueError, match="AUTOENCODERS_CPU_MATMULS='mkl': must be one of auto"):
        training.check_config(tiny_config())


@cpu_only
def test_eigen_s_options_replace_ynnpack_s_products():
    a = jnp.ones((64, 64))
    default = jax.jit(jnp.dot).lower(a, a).compile().as_text()
    if "ynn_fusion" not in default:
        pytest.skip("this XLA:CPU does not hand products to YNNPACK by default")
    eigen = jax.jit(jnp.dot, compiler_options=cpu_matmuls.OPTIONS["eigen"])
    assert "ynn_fusion" not in eigen.lower(a, a).compile().as_text()


@cpu_only
def test_conv_vae_loss_and_gradients_equal_under_both_libraries():
    config, spec, batch = tiny_conv_vae(16)
    model = models.make(config, spec)
    params = model.init(jax.random.key(0), batch)
    results = {}
    for kernels, options in cpu_matmuls.OPTIONS.items():
        grad_fn = jax.jit(jax.grad(model.loss, has_aux=True), compiler_options=options)
        results[kernels] = grad_fn(params, batch, jax.random.key(2))
    for a, e in zip(*(jax.tree.leaves(results[k]) for k in ("eigen", "ynnpack")), strict=True):
        scale = float(np.max(np.abs(e))) or 1.0
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-5, atol=1e-5 * scale)


def _choices(workdir) -> list[dict]:
    with open(workdir / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    return [row for row in rows if row.get("event") == "cpu_matmuls"]


@cpu_only
def test_a_run_probes_records_its_choice_and_keeps_it_on_resuming(tmp_path, monkeypatch):
    config = tiny_config("vae", **{"train.num_epochs": 1})
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")
    training.train_and_evaluate(config, str(tmp_path))
    (first,) = _choices(tmp_path)
    assert first["kernels"] in cpu_matmuls.OPTIONS
    assert f"{epoch.PROBE_STEPS} steps of the epoch, best of" in first["reason"]

    # Resumed for one more epoch: the recorded choice, not a new probe.
    def no_probe(*args, **kwargs):
        raise AssertionError("a resumed run probed again")

    monkeypatch.setattr(cpu_matmuls, "choose", no_probe)
    config.train.num_epochs = 2
    training.train_and_evaluate(config, str(tmp_path))
    assert [c["kernels"] for c in _choices(tmp_path)] == [first["kernels"]] * 2
    assert "kept on resuming" in _choices(tmp_path)[1]["reason"]

    # AUTOENCODERS_CPU_MATMULS, once set, overrides what the run recorded.
    other = "eigen" if first["kernels"] == "ynnpack" else "ynnpack"
    monkeypatch.setenv(cpu_matmuls.ENV, other)
    config.train.num_epochs = 3
    training.train_and_evaluate(config, str(tmp_path))
    assert _choices(tmp_path)[-1]["kernels"] == other


@cpu_only
def test_a_finished_run_is_not_probed(tmp_path, monkeypatch):
    config = tiny_config("vae", **{"train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path))
    # As a run written before the choice was recorded: no cpu_matmuls event.
    path = tmp_path / "metrics.jsonl"
    lines = [line for line in path.read_text().splitlines() if '"cpu_matmuls"' not in line]
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")
    monkeypatch.setattr(cpu_matmuls, "choose", lambda *a, **k: pytest.fail("probed"))
    training.train_and_evaluate(config, str(tmp_path))
    assert _choices(tmp_path) == []


@cpu_only
def test_a_per_step_loop_is_not_probed(tmp_path, monkeypatch):
    """The probe times scanned steps; a run that trains by a per-step loop keeps XLA's default."""
    config = tiny_config("vae", **{"train.num_epochs": 1, "train.epoch_loop": "steps"})
    monkeypatch.setenv(cpu_matmuls.ENV, "auto")
    monkeypatch.setattr(cpu_matmuls, "choose", lambda *a, **k: pytest.fail("probed"))
    training.train_and_evaluate(config, str(tmp_path))
    (choice,) = _choices(tmp_path)
    assert choice["kernels"] == "ynnpack" and "no probe" in choice["reason"]
