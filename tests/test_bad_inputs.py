"""Bad inputs to every command: one line (`error: ...`) naming the flag, field or file and what it
allows, exit status 1, no traceback, and nothing changed in the workdirs and sweep dirs it names.

The commands run in this process through their real entry points (`experiments.cli.call`: the
same flag parsing and error handling as `python -m experiments.<name>`); one test runs a command
as a subprocess, to check what a user's terminal shows."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from absl import flags, logging
from PIL import Image

from autoencoders import launch, sweeps, training
from experiments import cli
from tests.helpers import REPO

COMMANDS = ("train", "evaluate", "sweep", "report", "reproduce")

# A sweep of two runs on the embedded digits; the fixture trains run 0 (latent_dim=2) for an epoch.
TINY_SWEEP = """
from autoencoders import sweeps
from configs.vae import get_config  # noqa: F401


def get_sweep(name):
    if name != "tiny":
        raise ValueError(f"no sweep {name!r}: tiny")
    return sweeps.declare(
        sweeps.axis("model.latent_dim", [2, 3]),
        fixed={"arg:data": "digits", "network.hidden": (16,), "train.num_epochs": 1},
    )
"""


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A directory with `tiny.py` (TINY_SWEEP), `sweep/` (its manifest, run 0 trained) and `file`
    (a plain file). Cases copy it and refer to its parts as {config}, {sweep}, {run}, {file},
    {new} (a path that does not exist yet)."""
    root = tmp_path_factory.mktemp("existing")
    (root / "tiny.py").write_text(TINY_SWEEP)
    (root / "file").write_text("not a directory\n")
    plan = sweeps.plan_from_command(f"{root / 'tiny.py'}:sweep=tiny", str(root / "sweep"))
    launch.write_manifest(plan)
    training.train_and_evaluate(launch.resolve_config(plan.runs[0].argv), plan.runs[0].workdir)
    yield root
    _forget_commands()
    flags.FLAGS.unparse_flags()


def _forget_commands() -> None:
    """Undefines the commands' flags and unloads their modules, so one can be imported afresh: they
    define flags of the same names (--workdir, --config), and training's config flag defines
    --config.<field> flags as it parses."""
    names = {f.name for c in COMMANDS for f in flags.FLAGS.get_key_flags_for_module(_module(c))}
    names |= {name for name in flags.FLAGS if name.startswith("config.")}
    for name in names:
        delattr(flags.FLAGS, name)
    for command in COMMANDS:
        sys.modules.pop(_module(command), None)


def _module(command: str) -> str:
    return f"experiments.{command}"


@contextlib.contextmanager
def command_line(command: str, argv: list[str], monkeypatch) -> Iterator[Callable[[], None]]:
    """`python -m experiments.<command> *argv`, to call in this process: the command's module
    imported afresh, sys.argv set (training's config flag reads its overrides there), and the
    logging that `cli.start` sets up put back afterwards."""
    _forget_commands()
    flags.FLAGS.unparse_flags()
    module = importlib.import_module(_module(command))
    argv = [command, *argv]
    monkeypatch.setattr(sys, "argv", argv)
    verbosity, handler = logging.get_verbosity(), logging.get_absl_handler()
    handler_filters = list(handler.filters)
    try:
        yield lambda: cli.call(module.main, argv, getattr(module, "parse_flags", cli.parse_flags))
    finally:
        logging.set_verbosity(verbosity)
        handler.filters[:] = handler_filters


def run_command(command: str, argv: list[str], monkeypatch, capfd) -> tuple[int, str]:
    """(exit status, stderr with the exit message) of `python -m experiments.<command> *argv`."""
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    with command_line(command, argv, monkeypatch) as call, pytest.raises(SystemExit) as exit_info:
        call()
    code = exit_info.value.code
    stderr = capfd.readouterr().err
    if isinstance(code, str):  # as the interpreter does: the message to stderr, status 1
        return 1, stderr + code + "\n"
    return code, stderr


def snapshot(root: pathlib.Path) -> dict[str, tuple]:
    """Every file (size, mtime, sha1) and directory under root."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            state[str(path.relative_to(root))] = ("dir",)
        else:
            stat = path.stat()
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
    return state


def _truncate(path: pathlib.Path) -> None:
    """Cuts a file in the middle of its last line, as a full disk or a kill mid-write would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 15])


def _empty_object(path: pathlib.Path) -> None:
    """Valid JSON, but not what the file should hold."""
    path.write_text("{}\n")


def _remove(path: pathlib.Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _folder_of(**files: tuple[int, int] | bytes) -> Callable[[pathlib.Path], None]:
    """Damage: the path made a folder of these files, each an (height, width) black PNG or the
    given bytes."""

    def make(path: pathlib.Path) -> None:
        _remove(path)
        path.mkdir()
        for name, content in files.items():
            if isinstance(content, bytes):
                (path / name).write_bytes(content)
            else:
                Image.fromarray(np.zeros(content, np.uint8)).save(path / name)

    return make


def _npz_of(**arrays: np.ndarray) -> Callable[[pathlib.Path], None]:
    """Damage: the path's file made an .npz of these arrays (under the same name)."""

    def make(path: pathlib.Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    return make


RUN = "sweep/latent_dim=2"
DIGITS = "--config=configs/vae.py:data=digits"
FROM_FOLDER = ["--config=configs/vae.py:data=folder:{file}", "--workdir={new}"]
FROM_NPZ = ["--config=configs/vae.py:data=npz:{file}", "--workdir={new}"]
TINY_TRAIN = ["--config={config}:data=digits", "--config.network.hidden=(16,)"]
TINY_TRAIN += ["--config.train.num_epochs=1", "--workdir={run}"]
TINY_SWEEP_FLAGS = ["--config={config}:sweep=tiny", "--sweep_dir={sweep}"]

# (id, command, arguments, expected text of the error line, damage done to the copy beforehand)
CASES = [
    # train: the config file and its arguments
    ("train-config-argument-typo", "train", ["--config=configs/vae.py:latnet=2", "--workdir={new}"],
     "--config: Config argument 'latnet=2': expected key=value with key one of latent", None),
    ("train-unknown-likelihood-preset", "train",
     ["--config=configs/vae.py:likelihood=poisson", "--workdir={new}"],
     "likelihood='poisson': must be one of bernoulli, continuous_bernoulli", None),
    ("train-config-argument-type", "train", ["--config=configs/vae.py:latent=x", "--workdir={new}"],
     "--config: Config argument latent='x': must be of type int.", None),
    ("train-config-argument-without-value", "train",
     ["--config=configs/vae.py:latent", "--workdir={new}"],
     "--config: Config argument 'latent': expected key=value", None),
    ("train-no-config-file", "train", ["--config=configs/nope.py", "--workdir={new}"],
     "--config: [Errno 2] No such file or directory: 'configs/nope.py'", None),
    ("train-config-file-is-a-directory", "train", ["--config=configs", "--workdir={new}"],
     "--config: [Errno 21] Is a directory: 'configs'", None),
    ("train-config-file-syntax-error", "train", ["--config={file}", "--workdir={new}"],
     "--config: invalid syntax (file, line 1)", None),
    ("train-no-config-flag", "train", ["--workdir={new}"],
     "error: flag --config=None: Flag --config must have a value other than None.", None),
    # train: --config.<field> overrides
    ("train-override-typo", "train", [DIGITS, "--config.model.latnt_dim=3", "--workdir={new}"],
     "--config.model.latnt_dim: no config field 'latnt_dim'. Did you mean \"latent_dim\"?", None),
    ("train-override-unknown-section", "train",
     [DIGITS, "--config.modl.latent_dim=3", "--workdir={new}"],
     "--config.modl.latent_dim: no config field 'modl'.", None),
    ("train-override-not-an-int", "train",
     [DIGITS, "--config.model.latent_dim=abc", "--workdir={new}"],
     "flag --config.model.latent_dim=abc: invalid literal for int()", None),
    ("train-override-not-a-bool", "train",
     [DIGITS, "--config.train.data_parallel=maybe", "--workdir={new}"],
     "flag --config.train.data_parallel=maybe: ('Non-boolean argument", None),
    ("train-override-unclosed-tuple", "train",
     [DIGITS, "--config.network.hidden=(16,", "--workdir={new}"],
     "flag --config.network.hidden=(16,: Error while parsing string", None),
    ("train-override-without-value", "train", [DIGITS, "--workdir={new}", "--config.seed"],
     "Missing value for flag --config.seed", None),
    # train: values the config refuses
    ("train-learning-rate-inf", "train", [*TINY_TRAIN, "--config.optimizer.learning_rate=inf"],
     "config.optimizer.learning_rate=inf: must be a finite number.", None),
    ("train-beta-nan", "train", [*TINY_TRAIN, "--config.model.beta=nan"],
     "config.model.beta=nan: must be a finite number.", None),
    ("train-vmapped-value-inf", "train", [*TINY_TRAIN, "--config.vmap={{'beta': (1.0, 1e999)}}"],
     "config.vmap.beta=(1.0, inf): must be a finite number.", None),
    ("train-negative-latent-dim", "train", [*TINY_TRAIN, "--config.model.latent_dim=-1"],
     "config.model.latent_dim=-1: must be > 0", None),
    ("train-zero-batch-size", "train", [*TINY_TRAIN, "--config.train.batch_size=0"],
     "config.train.batch_size=0: must be > 0.", None),
    ("train-unknown-likelihood-name", "train", [*TINY_TRAIN, "--config.likelihood.name=poisson"],
     "config.likelihood.name='poisson': must be one of", None),
    ("train-unknown-family", "train", [*TINY_TRAIN, "--config.model.family=gan"],
     "config.model.family='gan': must be one of ae, vae,", None),
    ("train-adam-b1-out-of-range", "train", [*TINY_TRAIN, "--config.optimizer.b1=1.5"],
     "config.optimizer.b1=1.5: must be in [0, 1).", None),
    ("train-unknown-dataset", "train", ["--config=configs/vae.py:data=mnistt", "--workdir={new}"],
     "config.data.name='mnistt': not one of digits, frey_face and not a TFDS dataset "
     "(DatasetNotFoundError: Dataset mnistt not found.).", None),
    # train: datasets from files
    ("train-data-folder-empty", "train", FROM_FOLDER,
     "config.data.name='folder:{file}': {file} holds no PNG or JPEG files and no class "
     "sub-folders.", (_folder_of(), "file")),
    ("train-data-folder-mixed-sizes", "train", FROM_FOLDER,
     "images of different sizes ({file}/a.png is 8×8, {file}/b.png is 6×8); set "
     "config.data.image_size", (_folder_of(**{"a.png": (8, 8), "b.png": (8, 6)}), "file")),
    ("train-data-folder-unreadable-file", "train", FROM_FOLDER,
     "cannot read {file}/b.png as an image (cannot identify image file",
     (_folder_of(**{"a.png": (8, 8), "b.png": b"not a png"}), "file")),
    ("train-data-npz-floats-out-of-range", "train", FROM_NPZ,
     "config.data.name='npz:{file}': x holds floats from -0.5 to 1: floats must lie in [0, 1]",
     (_npz_of(x=np.array([[-0.5, 1.0]] * 5)), "file")),
    ("train-data-npz-nan", "train", FROM_NPZ, "config.data.name='npz:{file}': x holds 1 NaN",
     (_npz_of(x=np.array([[np.nan, 1.0]] + [[0.5, 0.5]] * 4)), "file")),
    ("train-data-npz-labels-length", "train", FROM_NPZ,
     "y has shape (3,): expected one label per example, (5,).",
     (_npz_of(x=np.zeros((5, 4)), y=np.zeros(3, int)), "file")),
    ("train-data-npz-labels-not-integers", "train", FROM_NPZ,
     "y has dtype float64: labels must be integers >= 0.",
     (_npz_of(x=np.zeros((5, 4)), y=np.zeros(5)), "file")),
    ("train-data-npy-missing", "train", ["--config=configs/vae.py:data=npy:{new}.npy",
     "--workdir={new}"], "config.data.name='npy:{new}.npy': no file {new}.npy.", None),
    ("train-data-flat-vectors-conv", "train",
     ["--config=configs/vae.py:data=npz:{file},net=conv", "--workdir={new}"],
     "config.network.kind='conv' needs images; the data (1, 4, 1) are flat vectors",
     (_npz_of(x=np.zeros((5, 4))), "file")),
    # train: the workdir
    ("train-workdir-is-a-file", "train", [DIGITS, "--workdir={file}"],
     "--workdir={file} is a file; it must be a directory.", None),
    ("train-workdir-under-a-file", "train", [DIGITS, "--workdir={file}/run"],
     "--workdir={file}/run (its parent {file}) is a file; it must be a directory.", None),
    ("train-empty-workdir", "train", [DIGITS, "--workdir="],
     "--workdir is empty: give a directory.", None),
    ("train-config-json-not-a-config", "train", TINY_TRAIN,
     "{run}/config.json is not a run's config: a JSON object with model, likelihood,",
     (_empty_object, f"{RUN}/config.json")),
    ("train-no-workdir-flag", "train", [DIGITS],
     "flag --workdir=None: Flag --workdir must have a value other than None.", None),
    ("train-changed-config", "train", [*TINY_TRAIN, "--config.model.latent_dim=3"],
     "holds a run with a different config (model.latent_dim: 2 -> 3): use a new --workdir", None),
    ("train-truncated-config-json", "train", TINY_TRAIN,
     "{run}/config.json is not valid JSON", (_truncate, f"{RUN}/config.json")),
    # train: the command line itself
    ("train-unknown-flag", "train", [DIGITS, "--wrkdir={new}"],
     "Unknown command line flag 'wrkdir'. Did you mean: workdir ?", None),
    ("train-stray-argument", "train", [DIGITS, "--workdir={new}", "extra"],
     "unexpected arguments extra: give options as --flags.", None),
    # evaluate
    ("evaluate-missing-epoch", "evaluate", ["--workdir={run}", "--epoch=999"],
     "epoch 999: no checkpoint of it in {run}/checkpoints (saved epochs: 1).", None),
    ("evaluate-epoch-zero", "evaluate", ["--workdir={run}", "--epoch=0"],
     "flag --epoch=0: 0 is not a positive integer", None),
    ("evaluate-epoch-not-a-number", "evaluate", ["--workdir={run}", "--epoch=last"],
     "flag --epoch=last: invalid literal for int()", None),
    ("evaluate-no-checkpoint", "evaluate", ["--workdir={run}"],
     "No checkpoint in {run}/checkpoints.", (_remove, f"{RUN}/checkpoints")),
    ("evaluate-not-a-run", "evaluate", ["--workdir={sweep}"],
     "No config.json in {sweep}: not a run directory.", None),
    ("evaluate-workdir-does-not-exist", "evaluate", ["--workdir={new}"],
     "No config.json in {new}: not a run directory.", None),
    ("evaluate-workdir-is-a-file", "evaluate", ["--workdir={file}"],
     "--workdir={file} is a file; it must be a directory.", None),
    ("evaluate-no-workdir-flag", "evaluate", [],
     "flag --workdir=None: Flag --workdir must have a value other than None.", None),
    ("evaluate-truncated-config-json", "evaluate", ["--workdir={run}"],
     "{run}/config.json is not valid JSON", (_truncate, f"{RUN}/config.json")),
    ("evaluate-config-json-not-a-config", "evaluate", ["--workdir={run}"],
     "{run}/config.json is not a run's config", (_empty_object, f"{RUN}/config.json")),
    ("evaluate-unknown-part", "evaluate", ["--workdir={run}", "--parts=density,bogus"],
     "parts=['bogus']: must be among density, reduction, manifold, representation, figures.",
     None),
    ("evaluate-no-parts", "evaluate", ["--workdir={run}", "--parts="],
     "parts=[]: must be among density", None),
    ("evaluate-zero-samples", "evaluate", ["--workdir={run}", "--num_samples=0"],
     "num_samples=0: must be > 0.", None),
    ("evaluate-negative-chunk", "evaluate", ["--workdir={run}", "--sample_chunk=-4"],
     "sample_chunk=-4: must be > 0.", None),
    ("evaluate-zero-neighbours", "evaluate", ["--workdir={run}", "--knn_neighbors=0"],
     "knn_neighbors=0: must be > 0.", None),
    ("evaluate-negative-density-examples", "evaluate",
     ["--workdir={run}", "--density_examples=-1"], "density_examples=-1: must be >= 0.", None),
    ("evaluate-threshold-nan", "evaluate", ["--workdir={run}", "--active_threshold=nan"],
     "active_threshold=nan: must be finite, >= 0.", None),
    ("evaluate-report-ks-above-samples", "evaluate",
     ["--workdir={run}", "--num_samples=10", "--report_ks=1,100"],
     "report_ks=(1, 100): each must be in 1..num_samples.", None),
    ("evaluate-report-ks-not-ints", "evaluate", ["--workdir={run}", "--report_ks=1,x"],
     "--report_ks: 'x' is not of type int.", None),
    ("evaluate-unknown-projection", "evaluate", ["--workdir={run}", "--latent_projection=umap"],
     "latent_projection='umap': must be pca or tsne.", None),
    ("evaluate-stray-argument", "evaluate", ["--workdir={run}", "density"],
     "unexpected arguments density: give options as --flags.", None),
    # sweep
    ("sweep-zero-workers", "sweep", [*TINY_SWEEP_FLAGS, "--workers=0"],
     "flag --workers=0: 0 is not a positive integer", None),
    ("sweep-workers-not-a-number", "sweep", [*TINY_SWEEP_FLAGS, "--workers=two"],
     "flag --workers=two: invalid literal for int()", None),
    ("sweep-negative-run-id", "sweep", [*TINY_SWEEP_FLAGS, "--runs=-1"],
     "--runs=-1: '-1' is not an id or a range low-high with low <= high", None),
    ("sweep-empty-run-range", "sweep", [*TINY_SWEEP_FLAGS, "--runs=5-2"],
     "--runs=5-2: '5-2' is not an id or a range low-high with low <= high", None),
    ("sweep-run-id-out-of-range", "sweep", [*TINY_SWEEP_FLAGS, "--runs=0,7"],
     "--runs=0,7: this sweep's run ids are 0..1.", None),
    ("sweep-run-id-not-a-number", "sweep", [*TINY_SWEEP_FLAGS, "--runs=first"],
     "--runs=first: 'first' is not an id", None),
    ("sweep-no-sweep-named", "sweep", ["--config={config}", "--sweep_dir={sweep}"],
     "--config='{config}': name one sweep, e.g. {config}:sweep=NAME.", None),
    ("sweep-unknown-sweep", "sweep", ["--config={config}:sweep=big", "--sweep_dir={sweep}"],
     "no sweep 'big': tiny", None),
    ("sweep-no-config-file", "sweep", ["--config=configs/nope.py:sweep=x", "--sweep_dir={new}"],
     "No config file 'configs/nope.py'.", None),
    ("sweep-config-declares-no-sweeps", "sweep",
     ["--config=configs/common.py:sweep=x", "--sweep_dir={new}"],
     "configs/common.py declares no sweeps (no get_sweep).", None),
    ("sweep-dir-is-a-file", "sweep", ["--config={config}:sweep=tiny", "--sweep_dir={file}"],
     "--sweep_dir={file} is a file; it must be a directory.", None),
    ("sweep-no-sweep-dir-flag", "sweep", ["--config={config}:sweep=tiny"],
     "flag --sweep_dir=None: Flag --sweep_dir must have a value other than None.", None),
    ("sweep-override-typo-for-every-run", "sweep",
     [*TINY_SWEEP_FLAGS, "--config.model.latnt_dim=3"],
     "no run can start; run [0] latent_dim=2: --config.model.latnt_dim: no config field", None),
    ("sweep-learning-rate-inf-for-every-run", "sweep",
     [*TINY_SWEEP_FLAGS, "--config.optimizer.learning_rate=inf"],
     "no run can start; run [0] latent_dim=2: config.optimizer.learning_rate=inf: must be a "
     "finite number.", None),
    ("sweep-config-argument-typo", "sweep",
     ["--config={config}:sweep=tiny,latnet=2", "--sweep_dir={sweep}"],
     "no run can start; run [0] latent_dim=2: --config: Config argument 'latnet=2'", None),
    ("sweep-overrides-what-it-varies", "sweep", [*TINY_SWEEP_FLAGS, "--config.model.latent_dim=5"],
     "model.latent_dim is what sweep 'tiny' varies; it cannot also be set on the command line.",
     None),
    ("sweep-override-without-value", "sweep", [*TINY_SWEEP_FLAGS, "--config.seed"],
     "--config.seed: write overrides as --config.<field>=<value>.", None),
    ("sweep-stray-argument", "sweep", [*TINY_SWEEP_FLAGS, "now"],
     "unexpected arguments now: give options as --flags.", None),
    # report
    ("report-unknown-x", "report", ["--sweep_dir={sweep}", "--x=beta"],
     "--x=beta: not a key this sweep varies (it varies latent_dim).", None),
    ("report-no-manifest", "report", ["--sweep_dir={run}"],
     "No manifest.json in {run}: run experiments.sweep first.", None),
    ("report-sweep-dir-does-not-exist", "report", ["--sweep_dir={new}"],
     "No manifest.json in {new}: run experiments.sweep first.", None),
    ("report-no-sweep-dir-flag", "report", [],
     "Give one of --sweep_dir (a sweep's report) or --workdir (a run's).", None),
    ("report-sweep-dir-and-workdir", "report", ["--sweep_dir={sweep}", "--workdir={run}"],
     "Give one of --sweep_dir (a sweep's report) or --workdir (a run's).", None),
    ("report-workdir-not-a-run", "report", ["--workdir={sweep}"],
     "No config.json in {sweep}: not a run directory.", None),
    ("report-out-is-a-file", "report", ["--sweep_dir={sweep}", "--out={file}"],
     "--out={file} is a file; it must be a directory.", None),
    ("report-truncated-manifest", "report", ["--sweep_dir={sweep}"],
     "{sweep}/manifest.json is not valid JSON", (_truncate, "sweep/manifest.json")),
    ("report-truncated-metrics", "report", ["--sweep_dir={sweep}"],
     "{run}/metrics.jsonl: line ", (_truncate, f"{RUN}/metrics.jsonl")),
    ("report-truncated-run-config", "report", ["--sweep_dir={sweep}"],
     "{run}/config.json is not valid JSON", (_truncate, f"{RUN}/config.json")),
    ("report-run-config-not-a-config", "report", ["--sweep_dir={sweep}"],
     "{run}/config.json is not a run's config", (_empty_object, f"{RUN}/config.json")),
    ("report-nothing-evaluated", "report", ["--sweep_dir={sweep}"],
     "No run in {sweep} has evaluated metrics yet.", (_remove, f"{RUN}/metrics.jsonl")),
    ("report-stray-argument", "report", ["--sweep_dir={sweep}", "latent_dim"],
     "unexpected arguments latent_dim: give options as --flags.", None),
    # reproduce
    ("reproduce-unknown-name", "reproduce", ["nope", "--root={new}"],
     "no reproduction 'nope' in configs/reproductions; declared: aae_", None),
    ("reproduce-two-names", "reproduce", ["hinton2006", "flax_vae", "--root={new}"],
     "name one reproduction, e.g. hinton2006 (declared: aae_", None),
    ("reproduce-no-name", "reproduce", ["--root={new}"],
     "name one reproduction, e.g. hinton2006", None),
    ("reproduce-unknown-budget", "reproduce", ["hinton2006", "--budget=huge"],
     "flag --budget=huge: value should be one of <tiny|cpu|paper>", None),
    ("reproduce-negative-workers", "reproduce", ["hinton2006", "--workers=-1"],
     "flag --workers=-1: -1 is not a non-negative integer", None),
    ("reproduce-root-is-a-file", "reproduce", ["hinton2006", "--root={file}"],
     "--root={file} is a file; it must be a directory.", None),
    ("reproduce-docs-dir-under-a-file", "reproduce",
     ["hinton2006", "--root={new}", "--docs_dir={file}/docs"],
     "--docs_dir={file}/docs (its parent {file}) is a file; it must be a directory.", None),
    ("reproduce-root-cannot-be-made", "reproduce", ["hinton2006", "--root=/proc/no-such-dir/runs"],
     "--root=/proc/no-such-dir/runs (its parent /proc) is not writable (", None),
    ("train-workdir-cannot-be-made", "train", [DIGITS, "--workdir=/proc/no-such-dir/run"],
     "--workdir=/proc/no-such-dir/run (its parent /proc) is not writable (", None),
]  # fmt: skip


@pytest.mark.parametrize(
    "command, argv, expected, damage", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_input_is_one_named_line_and_changes_nothing(
    existing, tmp_path, monkeypatch, capfd, command, argv, expected, damage
):
    root = tmp_path / "copy"
    shutil.copytree(existing, root)
    if damage is not None:
        damage[0](root / damage[1])
    places = {
        "config": root / "tiny.py",
        "sweep": root / "sweep",
        "run": root / RUN,
        "file": root / "file",
        "new": root / "new",
    }
    before = snapshot(root)
    status, stderr = run_command(command, [a.format(**places) for a in argv], monkeypatch, capfd)
    assert status == 1
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert expected.format(**places) in stderr
    assert snapshot(root) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only directory")
def test_a_workdir_that_is_not_writable(tmp_path, monkeypatch, capfd):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    argv = [DIGITS, f"--workdir={locked}/run"]
    status, stderr = run_command("train", argv, monkeypatch, capfd)
    assert status == 1
    assert stderr == (
        f"error: --workdir={locked}/run (its parent {locked}) is not writable (Permission "
        "denied); choose one you can write in.\n"
    )


def test_there_are_forty_distinct_cases_over_every_command():
    assert len({c[0] for c in CASES}) == len(CASES) >= 40
    assert {c[1] for c in CASES} == set(COMMANDS)


@pytest.mark.parametrize("debug_flag, env", [("--debug", "0"), ("--nodebug", "1")])
def test_debug_or_its_variable_raises_the_error_itself(tmp_path, monkeypatch, debug_flag, env):
    monkeypatch.setenv(cli.DEBUG_ENV, env)
    argv = [f"--workdir={tmp_path}", debug_flag]
    with (
        command_line("evaluate", argv, monkeypatch) as call,
        pytest.raises(FileNotFoundError, match="No config.json in"),
    ):
        call()


def _subprocess(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_a_users_terminal_shows_the_line_once_and_the_traceback_with_the_variable(tmp_path):
    command = ("experiments.sweep", "--config=configs/vae.py:sweep=latent_x_likelihood")
    command += (f"--sweep_dir={tmp_path}", "--runs=5-2")
    result = _subprocess(*command)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: --runs=5-2: '5-2' is not an id or a range low-high with low <= high "
        "(e.g. --runs=0-4,7).\n"
    )
    debug = _subprocess(*command, **{cli.DEBUG_ENV: "1"})
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "parse_ids" in debug.stderr
    assert os.listdir(tmp_path) == []
