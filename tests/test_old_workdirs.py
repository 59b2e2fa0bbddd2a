"""Workdirs written before the family contract still resume, evaluate and report.

`tests/data/workdir_e87e08f` is a one-epoch run of `tiny_config("vae", network.hidden=(16,))`
written by commit e87e08f: its checkpoint holds the train state as it was saved then, and its
metrics `start` event has no `headline` and only a `recon` unit.
"""

import json
import pathlib
import shutil

import pytest

from autoencoders import evaluation, launch, metrics, results, sweeps, training
from autoencoders import workdir as workdirs
from tests.helpers import REPO, tiny_config

OLD_RUN = REPO / "tests" / "data" / "workdir_e87e08f"


@pytest.fixture
def old_run(tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(OLD_RUN, workdir)
    return workdir


def test_an_old_workdir_resumes_and_appends(old_run):
    config = tiny_config("vae", **{"network.hidden": (16,), "train.num_epochs": 2})
    before = (old_run / "metrics.jsonl").read_text()
    final = training.train_and_evaluate(config, str(old_run), allow_config_change=True)
    assert final["test/neg_elbo"] > 0
    after = (old_run / "metrics.jsonl").read_text()
    assert after.startswith(before)  # appended, not rewritten
    assert metrics.latest_by_epoch(str(old_run / "metrics.jsonl"), "test").keys() == {1, 2}
    assert workdirs.restore_params(str(old_run))[3] == 2


def test_an_old_workdir_evaluates_and_reports_with_the_family_contract(old_run):
    options = evaluation.Options(parts=("density",), num_samples=4, report_ks=(1,))
    evaluated = evaluation.evaluate_run(str(old_run), options)
    assert evaluated["epoch"] == 1 and evaluated["density"]["nll"]["value"] > 0
    saved = json.loads((old_run / "config.json").read_text())
    headline, units = results.declared_units(str(old_run), saved)
    assert headline == "neg_elbo" and "nats per image" in units["neg_elbo"]


def test_a_run_written_before_a_family_field_existed_is_still_finished_and_resumes(tmp_path):
    """`model.code_activation` came to the ae families after runs were written: a config.json
    without it is the same run (launch.status: finished) and resumes with no permission needed,
    while a config that asks for another value is a change."""
    plan = sweeps.expand(
        sweeps.declare(sweeps.point({}), {"network.hidden": (16,), "train.num_epochs": 1}),
        sweep="t",
        config_file="configs/ae.py",
        config_arg="data=digits",
        sweep_dir=str(tmp_path / "sweep"),
    )
    (run,) = plan.runs
    config = launch.resolve_config(run.argv)
    training.train_and_evaluate(config, run.workdir)
    path = pathlib.Path(run.workdir) / workdirs.CONFIG_FILE
    saved = json.loads(path.read_text())
    del saved["model"]["code_activation"]  # as a run written before the field
    path.write_text(json.dumps(saved))
    assert launch.status(run) == "finished"
    assert workdirs.config_changes(config, run.workdir, allow_config_change=False) == []
    config.model.code_activation = "sigmoid"
    with pytest.raises(ValueError, match="model.code_activation: 'linear' -> 'sigmoid'"):
        workdirs.config_changes(config, run.workdir, allow_config_change=False)
