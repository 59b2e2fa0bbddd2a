"""benchmarks/run.py works end to end on the smallest setting and prints a parsable table; its
absl flags keep the spellings the README and docs quote; targets are judged from data; the
importance-sampling block's profile measures every part."""

import dataclasses
import importlib.util
import pathlib
import re
import time

import jax
import pytest
from absl import flags
from absl.testing import flagsaver

from benchmarks import (
    conv_layers,
    datasets,
    gpu,
    gradient_estimators,
    measure,
    parts,
    profile_step,
    report,
    run,
    sections,
    targets,
    timing,
)
from benchmarks.architectures import ARCHITECTURES
from experiments import cli


@pytest.fixture
def parse():
    """Parses benchmarks.run's flags as `python -m benchmarks.run ARGS` would: (settings, the
    flags as the record's command shows them). Flag values are restored afterwards."""
    was_parsed = flags.FLAGS.is_parsed()
    with flagsaver.flagsaver():

        def parse(argv):
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["benchmarks.run", *argv])
            return cli.dataclass_from_flags(run.Settings, run._FLAGS), run.given_flags()

        yield parse
    if not was_parsed:
        flags.FLAGS.unparse_flags()


def test_tiny_benchmark_table_parses(tmp_path, parse):
    has_torch = importlib.util.find_spec("torch") is not None
    out = tmp_path / "benchmarks.md"
    kept = f"{report.KEPT_HEADING}\n\nWritten by hand; | kept | as is |\n"
    out.write_text(f"# Benchmarks\n\nAn earlier record.\n\n{kept}")
    argv = [
        "--benchmarks=peak,train",
        "--models=iwae",
        "--steps=2",
        "--repeats=1",
        "--num_train=100",
        "--peak_size=128",
        "--torch_warmup_steps=1",
        f"--markdown_out={out}",
    ]
    settings, given = parse(argv if has_torch else [*argv, "--no_torch"])
    text = run.run_benchmarks(settings, given)
    assert out.read_text() == text
    assert text.endswith(kept) and "An earlier record" not in text
    assert "Command: `python -m benchmarks.run --benchmarks=peak,train --models=iwae" in text
    tables = report.parse_tables(text)
    (row,) = tables[sections.TRAIN_TABLE]
    assert row["model"].startswith("IWAE-paper VAE") and row["steps"] == "2"
    assert report.parse_number(row["JAX steps/s"]) > 0
    assert report.parse_number(row["JAX % of peak"]) > 0
    cpu = jax.default_backend() == "cpu"
    assert row["JAX products"] in (("ynnpack", "eigen") if cpu else ("xla",))
    assert "iwae JAX: XLA:CPU matrix products: " in text
    if has_torch:
        assert report.parse_number(row["PyTorch steps/s"]) > 0
        assert report.parse_number(row["JAX/PyTorch"]) > 0
    else:
        assert row["PyTorch steps/s"] == "—"
    (split,) = tables[sections.STEP_SPLIT_TABLE]
    for column in ("JAX step ms", "matmuls alone ms", "optimizer alone ms"):
        assert report.parse_number(split[column]) > 0, column
    (peak,) = tables["Matmul peak (float32 128×128, best of 3 after a warm-up)"]
    assert peak["measured before"].endswith("training")
    (flops,) = tables["Training FLOPs"]
    if has_torch:
        assert flops["params JAX"] == flops["params PyTorch"]
    speedup, speedup_best = tables["Targets"]
    assert speedup["target"] == "JAX/PyTorch on the IWAE-paper VAE ≥ 3×"
    assert speedup_best["target"].startswith("JAX/(the better of PyTorch eager and torch.compile)")
    if has_torch:
        torch_rates = [report.parse_number(row["PyTorch steps/s"])]
        if row["torch.compile steps/s"] and row["torch.compile steps/s"][0].isdigit():
            torch_rates.append(report.parse_number(row["torch.compile steps/s"]))
        best = report.parse_number(row["JAX steps/s"]) / max(torch_rates)
        assert report.parse_number(speedup_best["measured"]) == pytest.approx(best, rel=0.02)


def test_breakdowns_can_be_left_out(parse):
    """--no_step_split and --no_is_block_parts (the GPU run's settings: there the parts time
    kernel launches) drop their tables and nothing else."""
    argv = "--benchmarks=train,is_eval --models=iwae --is_models=iwae --steps=2 --repeats=1 "
    argv += "--num_train=100 --is_examples=2 --is_samples=10 --is_repeats=1 --no_torch "
    settings, given = parse([*argv.split(), "--no_step_split", "--no_is_block_parts"])
    tables = report.parse_tables(run.run_benchmarks(settings, given))
    assert sections.TRAIN_TABLE in tables and "Importance-sampled evaluation" in tables
    assert sections.STEP_SPLIT_TABLE not in tables
    assert sections.IS_BLOCK_TABLE not in tables


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            "--benchmarks=train --models=iwae,mlp --no_torch --repeats=3",
            {"benchmarks": ("train",), "models": ("iwae", "mlp"), "no_torch": True, "repeats": 3},
        ),
        (
            "--is_examples=1000 --is_repeats=2 --repeats=5 --markdown_out=docs/benchmarks.md",
            {
                "is_examples": 1000,
                "is_repeats": 2,
                "repeats": 5,
                "markdown_out": "docs/benchmarks.md",
            },
        ),
        (
            "--benchmarks=is_eval --is_models=mlp --is_example_batch=32 --vmap_sizes=1,4",
            {
                "benchmarks": ("is_eval",),
                "is_models": ("mlp",),
                "is_example_batch": 32,
                "vmap_sizes": (1, 4),
            },
        ),
    ],
)
def test_documented_commands_parse(parse, argv, expected):
    settings, given = parse(argv.split())
    for name, value in expected.items():
        assert getattr(settings, name) == value, name
    assert sorted(given) == sorted(argv.split())  # the record's command: the flags as given
    assert parse(given)[0] == settings


def test_make_bench_writes_the_record_by_its_command(parse):
    """`make bench` runs the command the record in docs/benchmarks.md names, and it parses."""
    root = pathlib.Path(__file__).resolve().parent.parent
    (make_flags,) = re.findall(r"^BENCH_FLAGS := (.*)$", (root / "Makefile").read_text(), re.M)
    record_text = (root / "docs" / "benchmarks.md").read_text()
    (record,) = re.findall(r"^Command: `python -m benchmarks.run (.*)`$", record_text, re.M)
    assert sorted(make_flags.split()) == sorted(record.split())
    assert parse(make_flags.split())[0].markdown_out == "docs/benchmarks.md"


@pytest.mark.parametrize(
    "argv, message",
    [
        ("--models=iwae,foo", "--models: unknown foo; choose from mlp, iwae, conv, conv64."),
        ("--benchmarks=", "--benchmarks: empty"),
        (
            "--data=synthetic --num_train=5000 --steps=100 --models=mlp",
            "--steps: 100 steps of mlp's batch 128",
        ),
        ("--repeats=0", "must be > 0"),
        ("--vmap_sizes=1,x", "--vmap_sizes: 'x' is not of type int."),
    ],
)
def test_bad_flag_values_are_refused(parse, argv, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(argv.split())


def test_targets_are_data_and_judged_against_their_minimum():
    iwae = targets.TRAIN_TARGETS["iwae"]["speedup"]
    mlp_speedup = targets.TRAIN_TARGETS["mlp"]["speedup"]
    table = targets.targets_table([(iwae, 2.9), (mlp_speedup, 1.3), (iwae, None)], busy=False)
    assert [row[0] for row in table.rows] == [iwae.label, mlp_speedup.label, iwae.label]
    assert [row[2] for row in table.rows] == ["no", "yes", None]
    assert targets.targets_table([(iwae, 5.0)], busy=True).rows[0][2] == "not judged (busy machine)"
    assert targets.Target("JAX % of peak, x", 60, "%").label == "JAX % of peak, x ≥ 60 %"


def test_importance_sampling_block_parts_are_all_timed():
    """The profile of an importance-sampling block times the whole block and every part of it,
    here on a tiny MLP VAE (small enough to run in a second or two)."""
    arch = dataclasses.replace(
        ARCHITECTURES["iwae"], hidden=(8,), latent_dim=2, image_shape=(4, 4, 1)
    )
    bench = datasets.synthetic_data((4, 4, 1), 8, 8, "test")
    block = parts.is_block_parts(arch, bench.spec, 2, 3, repeats=1, calls=2)
    assert (block.examples, block.samples, block.pairs) == (2, 3, 6)
    for name, seconds in {"whole": block.whole_s, **block.parts_s}.items():
        assert seconds > 0, name
    assert block.rest_s == pytest.approx(block.whole_s - sum(block.parts_s.values()))
    conv = parts.is_block_parts(ARCHITECTURES["conv"], bench.spec, 2, 3, repeats=1, calls=2)
    assert conv is None


def test_step_profile_counts_the_thunks_of_the_scanned_steps():
    """benchmarks/profile_step.py on a tiny conv VAE: the thunks of its training step, matrix
    products among them, with no container (while) or end-marker spans counted twice."""
    arch = dataclasses.replace(
        ARCHITECTURES["conv"], hidden=(8,), conv_features=(4,), image_shape=(8, 8, 1), batch_size=4
    )
    per_step = profile_step.profile_step(arch, steps=2)
    assert per_step and all(ms > 0 for ms in per_step.values())
    assert any(name.startswith(profile_step.MATMUL_PREFIXES) for name in per_step)
    assert not [n for n in per_step if n.startswith(("end: ", *profile_step.CONTAINER_THUNKS))]


def test_conv_layer_table_times_every_convolution_of_the_model():
    """benchmarks/conv_layers.py on a tiny conv VAE: its layers are the model's convolutions (the
    Flax parameters' kernel shapes), each timed in every program, PyTorch included where it is
    installed."""
    import jax

    arch = dataclasses.replace(
        ARCHITECTURES["conv"], conv_features=(4, 8), image_shape=(8, 8, 1), batch_size=2
    )
    layers = list(conv_layers.layers(arch))
    model = measure.JaxModel.build(
        arch, datasets.synthetic_data(arch.image_shape, 4, 2, "t").spec, 1
    )
    params = jax.eval_shape(model.make_state, jax.random.key(0)).params
    kernels = [
        leaf.shape
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if path[-1].key == "kernel" and len(leaf.shape) == 4
    ]
    assert sorted(kernels) == sorted((3, 3, la.channels, la.features) for la in layers)
    assert [la.name for la in layers] == ["conv_0", "conv_1", "upsample_0", "upsample_1", "out"]
    assert not layers[0].input_gradient and all(la.input_gradient for la in layers[1:])
    has_torch = importlib.util.find_spec("torch") is not None
    table = conv_layers.layer_table(arch, repeats=1, with_torch=has_torch)
    assert [row[0] for row in table.rows] == [*(la.title for la in layers), "all"]
    programs = [h for h in table.headers if h.endswith(" ms")]
    assert len(programs) == (6 if has_torch else 4)
    assert all(cell > 0 for row in table.rows for cell in row[2 : 2 + len(programs)])


def test_gradient_estimator_table_times_each_objective_and_gradient():
    """benchmarks/gradient_estimators.py on a tiny iwae config: one row per objective and
    gradient, each timed and counted, the ratios against that objective's plain gradient."""
    table = gradient_estimators.estimator_table("configs/iwae.py:k=2,data=digits", 1, 1)
    assert [row[:2] for row in table.rows] == [
        ["iwae", "reparameterization"],
        ["iwae", "dreg"],
        ["vae", "reparameterization"],
        ["vae", "dreg"],
    ]
    assert all(cell > 0 for row in table.rows for cell in row[2:])
    for plain, dreg in (table.rows[:2], table.rows[2:]):  # each objective against its own plain
        assert dreg[3] == pytest.approx(dreg[2] / plain[2])
        assert dreg[5] == pytest.approx(dreg[4] / plain[4])


BARE_CHECK = """
import glob, importlib.abc, importlib.machinery, sys
WHEELS = glob.glob("benchmarks/vendor/*.whl")
BLOCKED = {"tensorflow", "tensorflow_datasets", "clu", "tqdm", "bokeh"}

class Bare(importlib.abc.MetaPathFinder):
    # What the GPU machine lacks: ml_collections only from the vendored wheel, the rest not at all.
    def find_spec(self, name, path=None, target=None):
        if name == "ml_collections":
            return importlib.machinery.PathFinder.find_spec(name, WHEELS)
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not on the GPU machine")
        return None

sys.meta_path.insert(0, Bare())
import jax
from benchmarks import datasets, gpu, measure, run
from benchmarks.architectures import ARCHITECTURES
import ml_collections
assert ".whl" in ml_collections.__file__, ml_collections.__file__
bench = datasets.load_data("synthetic", 64, 8)
for name in ("mlp", "iwae", "conv"):
    jm = measure.JaxModel.build(ARCHITECTURES[name], bench.spec, 1)
    state = jm.init_state(jax.random.key(0))
    if name == "iwae":
        state, metrics = jm.train_epoch(1)(state, bench.train.images, bench.train.labels,
                                           jax.random.key(1))
        assert float(metrics["loss"]) > 0
print("bare ok", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def test_benchmarks_import_without_tensorflow_clu_or_ml_collections():
    """benchmarks/gpu.sh runs on a machine without TensorFlow, TFDS, CLU, tqdm, bokeh or an
    installed ml_collections (benchmarks/vendor/ holds its wheel): a top-level import of any of
    them on the benchmarks' path fails this test."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Without the tests' persistent compilation cache: reading it asks whether TensorFlow exists.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT_CACHE")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.update(PYTHONPATH=root, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", BARE_CHECK],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bare ok []" in result.stdout


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_step_products_are_the_training_steps_matrix_products(name, monkeypatch):
    """The products `step_matmul_loop` times are the step's own: forward, weight and input
    gradients of every layer, so their FLOPs are the analytic count less the first layer's input
    gradient (its input is data). Exactly, for an MLP; within 1% for the conv VAE, whose 'out'
    convolution is one product over the padded image (taps form, `conv.taps_matmul`). Under XLA's
    convolutions there are no conv products to time, and no table entry."""
    monkeypatch.setenv("AUTOENCODERS_CONV_LOWERING", "matmul")
    arch = dataclasses.replace(ARCHITECTURES[name], batch_size=4)
    spec = datasets.synthetic_data(arch.image_shape, 8, 4, "test").spec
    products = parts.step_products(arch, spec)
    height, width, channels = arch.image_shape
    if name == "mlp":
        first_macs = height * width * channels * arch.hidden[0]
    else:
        h1, w1, features = arch.conv_shapes()[0]
        first_macs = h1 * w1 * 9 * channels * features
    expected = arch.train_flops_per_step() - 2 * arch.batch_size * first_macs
    flops = sum(p.flops for p in products)
    assert flops == pytest.approx(expected, rel=0 if name == "mlp" else 0.01)
    if name == "conv":
        monkeypatch.setenv("AUTOENCODERS_CONV_LOWERING", "xla")
        assert parts.step_products(arch, spec) is None
        assert parts.step_matmul_loop(arch, spec, 1) is None


def test_step_split_times_a_conv_step_and_its_products():
    arch = dataclasses.replace(
        ARCHITECTURES["conv"], hidden=(8,), conv_features=(4,), image_shape=(8, 8, 1), batch_size=4
    )
    bench = datasets.synthetic_data(arch.image_shape, 8, 4, "test")
    trained = measure.bench_jax_training(arch, bench, steps=2, repeats=1)
    clock = measure.compile_clock()
    before = clock.total_s
    trained.call()
    assert clock.total_s == before  # the split times the timed epoch again, not a recompiled one
    split = parts.step_split(arch, bench, steps=2, repeats=1, train_epoch=trained.call)
    assert split.step_s > 0 and split.matmul_s > 0 and split.optimizer_s > 0
    assert split.matmul_flops == sum(p.flops for p in parts.step_products(arch, bench.spec))


def test_vmapped_members_are_timed_for_each_size():
    arch = dataclasses.replace(
        ARCHITECTURES["iwae"], hidden=(8,), latent_dim=2, image_shape=(8, 8, 1), batch_size=4
    )
    bench = datasets.synthetic_data(arch.image_shape, 8, 4, "test")
    results, flops = measure.bench_vmapped_members(arch, bench, steps=2, repeats=2, sizes=(1, 2))
    assert sorted(results) == [1, 2] and flops and flops > 0
    assert all(len(m.repeat_s) == 2 and min(m.repeat_s) > 0 for m in results.values())


def test_time_in_turn_times_the_frameworks_round_by_round():
    """Each round calls every result once, in turn; the results get those seconds and the last
    call's loss, replacing what their own (here: no) repeats left."""
    calls: list[str] = []

    def result(name: str) -> measure.TrainResult:
        def call() -> float:
            calls.append(name)
            return float(len(calls))

        return measure.TrainResult(measure.Measured(0.0, None, []), 3, 1, float("nan"), call=call)

    results = {"jax": result("jax"), "torch": result("torch")}
    measure.time_in_turn(results, 3)
    assert calls == ["jax", "torch"] * 3
    assert [len(r.measured.repeat_s) for r in results.values()] == [3, 3]
    assert results["jax"].loss == 5.0 and results["torch"].loss == 6.0


def test_interleaved_best_seconds_calls_each_in_turn():
    calls = []
    best = timing.interleaved_best_seconds(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2
    )
    assert calls == ["a", "b"] * 3  # a warm-up call each, then two rounds
    assert set(best) == {"a", "b"} and all(s >= 0 for s in best.values())


def test_gpu_run_skips_sections_past_its_deadline_and_records_each_sections_time():
    """benchmarks/gpu.sh must end within 8 minutes on a GPU nobody here can try it on: a section
    started after --deadline_s does not run, a failing one does not stop the rest, and the record
    says which and how long each took."""
    clock = gpu.SectionClock(deadline_s=60.0)
    assert clock.run("fast", lambda: 3) == 3
    assert clock.run("broken", lambda: 1 / 0) is None
    clock.started = time.perf_counter() - 61  # a minute and a second into the run
    called = []
    assert clock.run("late", lambda: called.append("late")) is None
    assert not called
    assert [(name, outcome) for name, _, outcome in clock.rows] == [
        ("fast", "ran"),
        ("broken", "failed"),
        ("late", "skipped: past the deadline"),
    ]
    assert clock.failures[0].startswith("broken: failed (ZeroDivisionError")
    assert clock.failures[1].startswith("late: skipped (started after 61 s of the run, past its 60")
    rows = report.parse_tables(clock.table().to_markdown())[gpu.TIME_TABLE]
    assert [row["section"] for row in rows] == ["fast", "broken", "late"]
    assert report.parse_number(rows[0]["wall s"]) >= 0 and rows[2]["wall s"] == "—"
    assert gpu.SectionClock(deadline_s=0.0, started=0.0).run("no deadline", lambda: 1) == 1


def test_gpu_grid_settings_past_the_deadline_are_left_out_one_by_one():
    bench = datasets.synthetic_data((28, 28, 1), 8, 4, "test")
    r = sections.Run(run.Settings(steps=1, repeats=1), bench, None)
    clock = gpu.SectionClock(deadline_s=1.0, started=time.perf_counter() - 2)
    gpu.grid_section(r, (1,), (1, 5), clock)
    assert [name for name, _, _ in clock.rows] == [
        "grid vae k=1",
        "grid vae k=5",
        "grid iwae k=1",
        "grid iwae k=5",
    ]
    (table,) = r.tables
    assert not table.rows and not r.raw


def test_gpu_record_names_every_section_the_deadline_skipped(tmp_path, monkeypatch):
    """`python -m benchmarks.gpu` end to end with a deadline already past: no section runs, and
    the record says so for each, in its method and in its table of sections."""
    monkeypatch.setattr(cli, "register_threefry", lambda: False)  # leave JAX as the suite has it
    monkeypatch.delenv("OUT", raising=False)
    out = tmp_path / "gpu.md"
    argv = ["--quick", "--no_torch", "--models=iwae", "--deadline_s=1e-9", f"--markdown_out={out}"]
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["benchmarks.gpu", *argv])
        gpu.main(["benchmarks.gpu"])
    text = out.read_text()
    rows = report.parse_tables(text)[gpu.TIME_TABLE]
    assert [(row["section"], row["outcome"]) for row in rows] == [
        (name, "skipped: past the deadline")
        for name in ("precision", "train iwae", "is_eval, example_batch 8", "grid", "vmap")
    ]
    assert text.count("**Failed or skipped** — ") == 5
    summary = gpu.summary(text)
    assert "**A quick smoke run's record, not a measurement.**" in summary
    assert "- **Failed or skipped** — grid: skipped (started after" in summary
    assert "| vmap | — | skipped: past the deadline |" in summary
    (command,) = re.findall(r"^Command: `(.*)`$", text, re.MULTILINE)
    assert command.startswith("python -m benchmarks.gpu ") and "--deadline_s=1e-09" in command


def test_benchmarks_md_gpu_section_is_the_gpu_records_summary():
    """docs/benchmarks.md's GPU rows are written from docs/benchmarks_gpu.md by benchmarks.gpu
    (`python -m benchmarks.gpu --summary_only` rewrites them), not copied by hand."""
    root = pathlib.Path(__file__).resolve().parent.parent
    doc = (root / gpu.SUMMARY_DOC).read_text()
    block = doc[doc.index(gpu.SUMMARY_BEGIN) + len(gpu.SUMMARY_BEGIN) : doc.index(gpu.SUMMARY_END)]
    record = (root / gpu.DEFAULT_OUT).read_text()
    assert block.strip("\n") == gpu.summary(record)
    trained = report.parse_tables(record)[sections.TRAIN_TABLE]
    assert len(trained) == 3
    for row in trained:
        assert f"| {row['model']} | {row['JAX steps/s']} | {row['PyTorch steps/s']} |" in block


def test_refresh_summary_rewrites_only_its_block(tmp_path):
    record = (pathlib.Path(__file__).resolve().parent.parent / gpu.DEFAULT_OUT).read_text()
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Before\n\n{gpu.SUMMARY_BEGIN}\nstale | 1 |\n{gpu.SUMMARY_END}\n\nAfter.\n")
    gpu.refresh_summary(str(doc), record)
    assert doc.read_text() == (
        f"# Before\n\n{gpu.SUMMARY_BEGIN}\n{gpu.summary(record)}\n{gpu.SUMMARY_END}\n\nAfter.\n"
    )
    doc.write_text("# No markers\n")
    gpu.refresh_summary(str(doc), record)
    assert doc.read_text() == "# No markers\n"
