"""Reproductions (`python -m experiments.reproduce NAME`): every declared reproduction expands at
every budget into runs whose configs resolve; each runs end to end at budget `tiny` (on the
embedded digits, in this process: burda2016_table1, twelve runs and their importance-sampled
evaluations, only with the slow tests), writes its page, figure and ledger row, and a re-run skips
what is finished; bad names and budgets are refused with one line."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import evaluation, launch, ledger, reproduce, training
from autoencoders import workdir as workdirs

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMES = (
    "aae_clustering",
    "aae_priors",
    "burda2016_table1",
    "dae_cae_features",
    "flax_vae",
    "hinton2006",
    "kingma_welling_fig2",
    "m2_100_labels",
)
# What each tiny page must show beyond the common checks: its rows, named as at every budget.
PAGE_SHOWS = {
    "aae_clustering": (
        "| 16 clusters: test error, paper's labelling | 9.55 |",
        "| 30 clusters: test error, paper's labelling | 4.10 |",
        "| 16 clusters, seed=0: clusters used | — |",
        "measures.json, the mean of 1 run (",
    ),
    "aae_priors": (
        "| conditional=true,prior=swiss_roll: own_component | — |",
        "| prior=mixture: purity | — |",
    ),
    "burda2016_table1": (
        "| 2 layers, IWAE k=50 | 82.90 |",
        "| 1 layer, IWAE k=1 | 86.76 |",
        "| 2 layers, IWAE (DReG) k=50, trained longer | 82.90 |",
        "| 2 layers, IWAE (DReG) k=50, trained longer − 2 layers, VAE k=50, trained longer | -1.88",
        "| 2 layers, VAE k=50, trained longer − 2 layers, VAE k=50 | — |",
        "| 2 layers, IWAE (DReG) k=50, trained longer − 2 layers, VAE k=50, trained longer: NLL "
        "from 10 samples | — |",
    ),
    "dae_cae_features": ("| CAE | 1.14 |", "| AE, probe | — |"),
    "flax_vae": ("| test −ELBO (evaluate) | 104.00 |",),
    "hinton2006": (
        "| deep autoencoder | 3.00 |",
        "| PCA, 30 components | 13.87 |",
        "squared error per test image, summed over",
    ),
    "kingma_welling_fig2": (
        "| MNIST, latent 200, 10^3 examples | — |",
        "| Frey Face, latent 20, 10^3 examples | — |",
    ),
    "m2_100_labels": (
        "| M2 test error (evaluate) | 11.97 |",
        "| M2 with the paper's α = 0.1·N, test error (evaluate) |",
        "argmax q(y\\|x)",  # a pipe in a cell is escaped
        "% of the test images misclassified",
    ),
}
SLOW_END_TO_END = ("burda2016_table1",)
END_TO_END = tuple(name for name in NAMES if name not in SLOW_END_TO_END)


def test_every_reproduction_is_declared():
    os.chdir(REPO)
    assert tuple(reproduce.available()) == NAMES


@pytest.mark.parametrize("budget", reproduce.BUDGETS)
@pytest.mark.parametrize("name", NAMES)
def test_dry_run_expands_and_every_run_config_resolves(name, budget, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    rep = reproduce.load(name, budget)
    ctx = reproduce.plans(rep, budget, str(tmp_path))
    text = reproduce.describe(ctx)
    assert text.startswith(f"{name} ({budget})")
    for part in rep.parts:
        plan = ctx.plans[part.name]
        assert plan.runs, part.name
        for run in plan.runs:
            assert run.workdir.startswith(os.path.join(str(tmp_path), name, budget, part.name))
            assert f"[{run.id}] {run.name} (new)" in text
            config = launch.resolve_config(run.argv)
            training.check_config(config)
            if budget == "tiny":
                assert config.data.name == "digits"
    for row in rep.rows:  # every row names a run (or runs) that exists
        assert ctx.row_runs(row)
        assert row.unit
    assert not os.listdir(tmp_path)  # a dry run writes nothing


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """The END_TO_END reproductions at budget tiny, run once for the session: (root, docs, status
    of each run, the metrics and eval.json stamps after the first pass)."""
    root = tmp_path_factory.mktemp("reproductions")
    docs = root / "docs"
    begin, end = ledger.README_MARKERS  # a README beside docs/ repeats the ledger's table
    (root / "README.md").write_text(f"# A fork\n\n{begin}\nstale\n{end}\n\nMore text.\n")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        codes = {
            name: reproduce.run_command(name, "tiny", str(root / "runs"), str(docs), 0, False)
            for name in END_TO_END
        }
    finally:
        os.chdir(cwd)
    return root, docs, codes


def _stamps(root: pathlib.Path) -> dict[str, float]:
    names = ("metrics.jsonl", "eval.json", "measures.json")
    return {str(p): p.stat().st_mtime for p in root.rglob("*") if p.name in names}


def _check_tiny_page(docs: pathlib.Path, name: str) -> None:
    """The page, figure and ledger row a tiny reproduction wrote."""
    page = (docs / "reproductions" / f"{name}.md").read_text()
    assert (docs / "reproductions" / f"{name}.png").stat().st_size > 0
    assert f"python -m experiments.reproduce {name} --budget=tiny" in page
    assert "not yet measured" not in page
    assert "Machine" in page and "Wall time" in page
    ledger = (docs / "reproductions.md").read_text()
    assert f"[{name}](reproductions/{name}.md)" in ledger
    for text in PAGE_SHOWS[name]:
        assert text in page, text
    # Every table line, of the page and of the ledger, has its five cells and no more.
    for line in [*page.splitlines(), *ledger.splitlines()]:
        if line.startswith("| "):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6, line


@pytest.mark.parametrize("name", END_TO_END)
def test_tiny_reproduction_writes_its_page_figure_and_ledger_row(tiny_runs, name):
    _, docs, codes = tiny_runs
    assert codes[name] == 0
    _check_tiny_page(docs, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_END_TO_END)
def test_slow_tiny_reproduction_writes_its_page_figure_and_ledger_row(name, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    docs = tmp_path / "docs"
    assert reproduce.run_command(name, "tiny", str(tmp_path / "runs"), str(docs), 0, False) == 0
    _check_tiny_page(docs, name)


def linked_from_readme(ledger_line: str) -> str:
    """A docs/reproductions.md table line as the README (beside docs/) repeats it."""
    return ledger_line.replace("](reproductions/", "](docs/reproductions/")


def test_the_readme_beside_docs_repeats_the_ledger_table(tiny_runs):
    root, docs, _ = tiny_runs
    readme = (root / "README.md").read_text()
    table = [line for line in (docs / "reproductions.md").read_text().splitlines() if "|" in line]
    assert "stale" not in readme and readme.endswith("More text.\n")
    for line in table:
        assert linked_from_readme(line) in readme


@pytest.mark.parametrize("name", NAMES)
def test_each_committed_page_was_written_from_its_config_as_it_is(name, monkeypatch):
    """A config edited without re-running its reproduction leaves a page that no longer says
    what the command would write: its budget, its rows; and the README repeats the ledger."""
    monkeypatch.chdir(REPO)
    rep = reproduce.load(name, "cpu")
    page = (REPO / "docs" / "reproductions" / f"{name}.md").read_text()
    assert f"Budget `cpu`: {rep.budget}" in page
    for row in rep.rows:
        assert f"| {ledger.cell(row.label)} |" in page, row.label
    readme = (REPO / "README.md").read_text()
    line = next(
        line
        for line in (REPO / "docs" / "reproductions.md").read_text().splitlines()
        if line.startswith(f"| [{name}]")
    )
    assert linked_from_readme(line) in readme


def test_the_ledger_gives_each_unit_once_after_the_numbers_in_it(tiny_runs):
    _, docs, _ = tiny_runs
    row = next(
        line
        for line in (docs / "reproductions.md").read_text().splitlines()
        if line.startswith("| [aae_clustering]")
    )
    ours = row.split(" | ")[2]
    head_unit = "(% test error, each cluster labelled as its most confident training image)"
    assert ours.count(head_unit) == 1 and ours.count("by k-means on the pixels") == 1
    # In the ledger's declared order: both paper's-labelling numbers, their unit, then k-means.
    order = ["16 clusters: test error", "30 clusters: test error", head_unit, "16 clusters: k-"]
    assert [ours.index(text) for text in order] == sorted(ours.index(text) for text in order)


def test_a_ledger_label_that_is_no_row_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs(reproduce.CONFIG_DIR)
    source = (REPO / reproduce.CONFIG_DIR / "flax_vae.py").read_text()
    typo = source.replace('ledger=("test −ELBO', 'ledger=("test ELBO')
    assert typo != source
    (tmp_path / reproduce.CONFIG_DIR / "forked.py").write_text(typo)
    with pytest.raises(ValueError, match=r"forked.py: ledger names .*test ELBO \(training"):
        reproduce.load("forked", "cpu")


class _CallRecorder:
    """A backend that trains nothing and records the runs of each call."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def run(self, runs):
        self.calls.append([r.name for r in runs])
        return [launch.Outcome(r, 0, 0.0, "") for r in runs]


def test_all_parts_runs_go_to_the_backend_in_one_call(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    rep = reproduce.load("m2_100_labels", "tiny")
    backend = _CallRecorder()
    root, docs = str(tmp_path / "runs"), str(tmp_path / "docs")
    page, failed = reproduce.reproduce(rep, "tiny", root, docs, backend, say=lambda line: None)
    assert backend.calls == [["m2/base", "m2_paper_alpha/base"]]
    # Nothing trained: the page still comes, saying so, rather than a missing-file error.
    assert failed == [] and "not yet measured" in pathlib.Path(page).read_text()


def test_rerun_skips_finished_work_and_keeps_other_rows(tiny_runs, capsys):
    root, docs, _ = tiny_runs
    before = _stamps(root)
    assert any(p.endswith("eval.json") for p in before)
    os.chdir(REPO)
    status = reproduce.run_command("hinton2006", "tiny", str(root / "runs"), str(docs), 0, False)
    out = capsys.readouterr().out
    assert status == 0
    assert "finished earlier" in out and "evaluating" not in out
    assert _stamps(root) == before  # nothing retrained, re-evaluated or re-measured
    ledger = (docs / "reproductions.md").read_text()
    assert all(f"[{name}]" in ledger for name in END_TO_END)  # the other row kept


def test_measures_taken_under_another_declaration_are_taken_again(tiny_runs, capsys):
    """Editing a declaration (a fork's new fine-tuning) must not leave its old numbers on the
    page: a run's measures.json records the declaration file's hash, and only that run whose
    hash differs is measured again."""
    root, docs, _ = tiny_runs
    run_dir = root / "runs" / "dae_cae_features" / "tiny" / "dae" / "base"
    path = run_dir / reproduce.MEASURES_FILE
    record = json.loads(path.read_text())
    assert record["declaration"] == reproduce.declaration_digest(
        reproduce.load("dae_cae_features", "tiny")
    )
    path.write_text(json.dumps({**record, "declaration": "an older file"}))
    before = _stamps(root)
    os.chdir(REPO)
    status = reproduce.run_command(
        "dae_cae_features", "tiny", str(root / "runs"), str(docs), 0, False
    )
    out = capsys.readouterr().out
    assert status == 0 and "measuring dae/base" in out and out.count("measuring") == 1
    after = _stamps(root)
    assert [p for p in before if before[p] != after[p]] == [str(path)]
    assert json.loads(path.read_text())["declaration"] == record["declaration"]


def test_a_row_reads_metrics_at_the_first_evaluation_past_its_examples(tiny_runs):
    root, _, _ = tiny_runs
    ctx = reproduce.plans(reproduce.load("hinton2006", "tiny"), "tiny", str(root / "runs"))
    run = ctx.run("deep_ae")
    rows = ctx.metric_rows(run, "test")
    seen = rows[1]["step"] * launch.resolve_config(run.argv).train.batch_size
    final = ctx.value(reproduce.Row("final", "deep_ae", "test/sq_err", "u"))
    at = ctx.value(reproduce.Row("at", "deep_ae", "test/sq_err", "u", examples=seen))
    assert final["value"] == at["value"] == rows[max(rows)]["sq_err"]
    assert at["source"] == f"metrics.jsonl, {seen:,} examples seen"
    past = reproduce.Row("past", "deep_ae", "test/sq_err", "u", examples=seen + 1)
    assert ctx.value(past) is None


def test_a_pooled_row_is_the_mean_over_seeds_with_their_standard_error(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    ctx = reproduce.plans(reproduce.load("aae_clustering", "cpu"), "cpu", str(tmp_path))
    pooled = reproduce.Row("pooled", "aae_cluster", "measure/head_error", "%", pooled="seed")
    assert [r.overrides["seed"] for r in ctx.row_runs(pooled)] == [0, 1, 2]
    errors = {0: 30.0, 1: 33.0, 2: 36.0}
    for seed, error in errors.items():
        workdir = ctx.run("aae_cluster", {"seed": seed}).workdir
        assert ctx.value(pooled) is None  # a seed not yet measured: no mean of the others
        os.makedirs(workdir)
        record = {"epoch": 15, "budget": "cpu", "values": {"head_error": {"value": error}}}
        with open(os.path.join(workdir, reproduce.MEASURES_FILE), "w") as f:
            json.dump(record, f)
    value = ctx.value(pooled)
    assert value["value"] == pytest.approx(33.0)
    assert value["stderr"] == pytest.approx(np.std([30, 33, 36], ddof=1) / np.sqrt(3))
    assert value["source"] == "measures.json, the mean of 3 runs (30, 33, 36)"
    one = reproduce.Row("one", "aae_cluster", "measure/head_error", "%", run={"seed": 1})
    assert ctx.value(one)["value"] == 33.0
    with pytest.raises(ValueError, match="pools 'clusters'"):
        ctx.row_runs(dataclasses.replace(pooled, pooled="clusters"))


def test_a_paired_row_is_the_mean_difference_over_the_shared_test_images(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    rep = reproduce.load("burda2016_table1", "cpu")
    ctx = reproduce.plans(rep, "cpu", str(tmp_path))
    row = next(r for r in rep.rows if r.label == "2 layers, IWAE k=50 − 1 layer, IWAE k=50")
    assert row.paper == pytest.approx(82.90 - 84.78)
    first, second = ctx.row_runs(row)
    assert "two_layers" in first.workdir and "one_layer" in second.workdir
    monkeypatch.setattr(reproduce.Context, "finished", lambda self, run: True)
    # The images' own spread (SD 20), which both models share, and a 1-nat gain of the first.
    rng = np.random.default_rng(0)
    shared = rng.normal(90.0, 20.0, 1000)
    nll = {first.name: shared - 1.0 + rng.normal(0.0, 0.5, 1000), second.name: shared}
    index = np.sort(rng.choice(10_000, 1000, replace=False))
    config = {section: {} for section in workdirs.CONFIG_SECTIONS}
    config["train"] = {"num_epochs": 13}
    for run in (first, second):
        os.makedirs(run.workdir)
        with open(os.path.join(run.workdir, "config.json"), "w") as f:
            json.dump(config, f)
    for run in (first, second):
        assert ctx.value(row) is None  # not both evaluated yet
        evaluation.write_per_image(run.workdir, 13, {"index": index, "nll": nll[run.name]})
    value = ctx.value(row)
    differences = nll[first.name] - nll[second.name]
    assert value["value"] == pytest.approx(differences.mean())
    assert value["stderr"] == pytest.approx(differences.std(ddof=1) / np.sqrt(1000))
    assert value["stderr"] < 0.05 < 20.0 / np.sqrt(1000)  # the shared spread cancelled
    assert "paired over 1,000 test images" in value["source"]
    # Values of another checkpoint are not read; other test images are an error naming the row.
    evaluation.write_per_image(second.workdir, 12, {"index": index, "nll": nll[second.name]})
    assert ctx.value(row) is None
    evaluation.write_per_image(second.workdir, 13, {"index": index + 1, "nll": nll[second.name]})
    with pytest.raises(ValueError, match="IWAE k=50 − 1 layer.*different test images"):
        ctx.value(row)


@pytest.mark.parametrize("budget", ["cpu", "paper"])
def test_each_burda_row_reads_the_model_its_label_names(budget, tmp_path, monkeypatch):
    """Labels such as "2 layers, IWAE (DReG) k=50, trained longer" against the configs of the
    runs they read: depth, training k, objective, gradient and epochs (the DReG IWAE and the
    paper's IWAE differ only in config.model.gradient, so a mix-up would go unseen on the page)."""
    monkeypatch.chdir(REPO)
    rep = reproduce.load("burda2016_table1", budget)
    ctx = reproduce.plans(rep, budget, str(tmp_path))
    label = re.compile(r"(\d) layers?, (VAE|IWAE|IWAE \(DReG\)) k=(\d+)(, trained longer)?")
    read = set()
    for row in rep.rows:
        models = [label.fullmatch(name.split(":")[0]) for name in row.label.split(" − ")]
        runs = ctx.row_runs(row)
        assert len(models) == len(runs) and all(models), row.label
        for model, run in zip(models, runs, strict=True):
            layers, objective, k, longer = model.groups()
            config = launch.resolve_config(run.argv)
            assert config.model.family == {"1": "iwae", "2": "hvae"}[layers], row.label
            assert config.model.num_samples == int(k), row.label
            # At k = 1 the two objectives are one model: both rows read the IWAE run.
            trains = "VAE" if k != "1" and objective == "VAE" else "IWAE"
            assert config.model.objective == trains.lower(), row.label
            assert (config.model.gradient == "dreg") == objective.endswith("(DReG)"), row.label
            epochs = {"cpu": 27 if longer else 13, "paper": 3280}[budget]
            assert config.train.num_epochs == epochs, row.label
            read.add(run.workdir)
    assert read == {run.workdir for plan in ctx.plans.values() for run in plan.runs}


def test_a_paired_row_of_a_metric_without_per_image_values_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs(reproduce.CONFIG_DIR)
    source = (REPO / reproduce.CONFIG_DIR / "burda2016_table1.py").read_text()
    forked = source.replace(
        '"eval/density/nll", DIFFERENCE', '"measure/active_units_z1", DIFFERENCE'
    )
    assert forked != source
    (tmp_path / reproduce.CONFIG_DIR / "forked.py").write_text(forked)
    with pytest.raises(ValueError, match=r"forked.py: row .* has `minus`.*eval/density/<name>"):
        reproduce.load("forked", "cpu")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"value": 6.4712, "stderr": 0.05}, "6.47 ± 0.05"),
        ({"value": 0.00312, "stderr": 0.00041}, "0.0031 ± 0.0004"),  # MMD²: not "0.00 ± 0.00"
        ({"value": 0.0123}, "0.0123"),
        ({"value": 48.54}, "48.54"),
        ({"value": 104.0}, "104"),
        (None, "not yet measured"),
    ],
)
def test_page_numbers_show_their_standard_errors_first_figure(value, text):
    assert ledger.number(value) == text


def test_aae_mmd_is_unbiased_for_pairs_drawn_given_the_same_labels_and_sees_a_shift():
    """The conditioned prior's check draws both samples given the test codes' labels: the
    estimator must stay centred on 0 there (the plain two-sample form drifted below it)."""
    from configs.reproductions.aae_priors import mmd2  # noqa: PLC0415

    rng = np.random.default_rng(0)
    same, shifted = [], []
    for _ in range(20):
        labels = rng.integers(0, 10, 300)
        centres = 3 * np.stack([np.cos(0.63 * labels), np.sin(0.63 * labels)], axis=1)
        a, b = (centres + 0.3 * rng.normal(size=(300, 2)) for _ in range(2))
        same.append(mmd2(a, b, 1.0))
        shifted.append(mmd2(a, b + 0.5, 1.0))
    stderr = np.std(same, ddof=1) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 3 * stderr
    assert np.mean(shifted) > 20 * stderr


def test_a_damaged_record_is_an_error_naming_it(tiny_runs):
    """eval.json is written atomically, so a damaged one is reported, not taken for missing
    (which would re-evaluate silently or print "not yet measured")."""
    root, docs, _ = tiny_runs
    path = next((root / "runs" / "hinton2006").rglob("eval.json"))
    saved = path.read_bytes()
    path.write_text('{"epoch": 3, "recon')
    os.chdir(REPO)
    try:
        with pytest.raises(ValueError, match=f"{path} is not valid JSON"):
            reproduce.run_command("hinton2006", "tiny", str(root / "runs"), str(docs), 0, False)
    finally:
        path.write_bytes(saved)


def test_measure_flag_prints_a_runs_measures_as_the_reproduction_saved_them(tiny_runs):
    root, _, _ = tiny_runs
    workdir = root / "runs" / "dae_cae_features" / "tiny" / "cae" / "base"
    saved = json.loads((workdir / reproduce.MEASURES_FILE).read_text())["values"]
    before = _stamps(root)
    os.chdir(REPO)
    lines = reproduce.measure_workdirs("dae_cae_features", "tiny", [str(workdir)])
    assert _stamps(root) == before  # measured again, nothing written
    error = saved["finetuned_error"]
    assert f"{workdir}: finetuned_error {ledger.number(error)} ({error['unit']})" in lines
    assert len(lines) == len(saved)
    with pytest.raises(ValueError, match="declares no per-run measure"):
        reproduce.measure_workdirs("hinton2006", "tiny", [str(workdir)])
    message = f"--measure={root}: No config.json in {root}: not a run directory."
    with pytest.raises(ValueError, match=re.escape(message)):
        reproduce.measure_workdirs("dae_cae_features", "tiny", [str(workdir), str(root)])


def test_dae_cae_finetuning_learns_and_keeps_its_best_held_out_epoch():
    """The papers' classifier protocol on the 8x8 digits from random weights: well below chance,
    and the epoch kept is the one with the fewest held-out errors (so never worse there than
    training longer)."""
    from sklearn.datasets import load_digits  # noqa: PLC0415

    from configs.reproductions import dae_cae_features as protocol  # noqa: PLC0415

    digits = load_digits()
    x, y = (digits.data / 16).astype("float32"), digits.target.astype("int32")
    data = {"train": (x[:1200], y[:1200]), "validation": (x[1200:1500], y[1200:1500])}
    data["test"] = (x[1500:], y[1500:])
    w = jax.nn.initializers.glorot_uniform()(jax.random.key(0), (64, 32))
    short = protocol.finetune(w, jnp.zeros(32), data, 1)
    long = protocol.finetune(w, jnp.zeros(32), data, 100)
    assert long["test_error"] < 15 < short["test_error"]  # chance: 90 %
    assert 1 <= long["epoch"] <= 100 and long["validation_error"] <= short["validation_error"]


def test_bad_name_and_budget_are_one_line(tmp_path):
    os.chdir(REPO)
    with pytest.raises(ValueError, match="no reproduction 'nope'"):
        reproduce.load("nope", "cpu")
    with pytest.raises(ValueError, match="--budget=huge"):
        reproduce.load("hinton2006", "huge")
    command = [sys.executable, "-m", "experiments.reproduce", "nope", f"--root={tmp_path}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no reproduction 'nope' in configs/reproductions; declared: {', '.join(NAMES)}."
    ]
    # --measure reaches measure_workdirs (here refusing a directory that holds no run).
    command = [sys.executable, "-m", "experiments.reproduce", "dae_cae_features"]
    command += ["--budget=tiny", f"--measure={tmp_path}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --measure={tmp_path}: No config.json in {tmp_path}: not a run directory."
    ]
