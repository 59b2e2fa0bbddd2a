"""The family contract and the shipped configs, end to end.

- Every registered family trains plain and as vmapped seed members, and member seed=0 equals the
  plain run (the vmapped program wraps the plain epoch).
- Every config file: its default config and each run of each named sweep resolve as the training
  command resolves them and pass the config check; the default trains one epoch on mock data.
- A new family is one module, one registry line and one config: a toy family defined here trains,
  evaluates and appears in a sweep report with no other edit.
"""

import importlib
import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from autoencoders import data, evaluation, launch, metrics, models, results, sweeps, training
from autoencoders.models import base
from tests.family_helpers import tiny_family_config

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem[0] != "_")
CONFIG_FILES.remove("common")
# The shipped config each family is tested with (at tiny sizes, on the embedded digits).
FAMILY_CONFIGS = {
    "ae": ("ae", ""),
    "vae": ("vae", ""),
    "dae": ("dae", ""),
    "dvae": ("dvae", ""),
    "cae": ("cae", ""),
    "scae": ("scae", ""),
    "iwae": ("iwae", ""),
    "hvae": ("hvae", ""),
    "cvae": ("cvae", ""),
    "m2": ("m2", "labels=100"),
    "aae": ("aae", "prior=mixture"),
    "aae_cluster": ("aae_cluster", ""),
}


def test_every_registered_family_is_tested():
    assert set(FAMILY_CONFIGS) == set(models.FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILY_CONFIGS))
def test_family_trains_plain_and_vmapped_and_members_equal_plain_runs(family, tmp_path):
    config_name, arg = FAMILY_CONFIGS[family]
    config = tiny_family_config(config_name, arg, **{"train.num_epochs": 1})
    plain = training.train_and_evaluate(config, str(tmp_path / "plain"))
    with config.unlocked():
        config.vmap = {"seed": (0, 1)}
    vmapped = training.train_and_evaluate(config, str(tmp_path / "vmapped"))
    headline = models.make(config, data.describe(config.data)).headline
    for split in ("train", "test"):
        for member in ("seed=0", "seed=1"):
            assert np.isfinite(vmapped[f"{member}/{split}/{headline}"])
        # Up to float round-off: vmapping reorders some reductions.
        assert vmapped[f"seed=0/{split}/{headline}"] == pytest.approx(
            plain[f"{split}/{headline}"], rel=2e-4
        )
    assert vmapped["seed=0/test/loss"] != vmapped["seed=1/test/loss"]


def test_family_capabilities_are_declared():
    spec = data.describe(tiny_family_config("vae").data)
    capabilities = {
        name: {
            c
            for c in ("latent_variable", "conditional", "denoising", "multi_phase")
            if getattr(models.make(tiny_family_config(*FAMILY_CONFIGS[name]), spec), c)
        }
        for name in FAMILY_CONFIGS
    }
    assert capabilities == {
        "ae": set(),
        "vae": {"latent_variable"},
        "dae": {"denoising"},
        "dvae": {"latent_variable", "denoising"},
        "cae": set(),
        "scae": set(),
        "iwae": {"latent_variable"},
        "hvae": {"latent_variable"},
        "cvae": {"latent_variable", "conditional"},
        "m2": {"latent_variable", "conditional"},
        "aae": {"multi_phase"},
        "aae_cluster": {"multi_phase"},
    }


# --- the shipped configs ------------------------------------------------------------------------


def _resolve(config_file: str, argv: tuple[str, ...] = ()):
    return launch.resolve_config([f"--config=configs/{config_file}.py", *argv])


@pytest.mark.parametrize("config_file", CONFIG_FILES)
def test_config_and_its_sweeps_resolve_and_pass_the_check(config_file, monkeypatch):
    monkeypatch.chdir(REPO)
    training.check_config(_resolve(config_file))
    module = importlib.import_module(f"configs.{config_file}")
    for name in getattr(module, "SWEEPS", ()):
        plan = sweeps.plan_from_command(f"configs/{config_file}.py:sweep={name}", "sweep_dir")
        assert plan.runs, name
        for run in plan.runs:
            training.check_config(launch.resolve_config(run.argv))


@pytest.mark.parametrize("config_file", CONFIG_FILES)
def test_config_trains_one_epoch_on_mock_data(config_file, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    config = _resolve(config_file, ("--config.train.num_epochs=1",))
    binary = config.data.name in data.BINARY_TFDS_DATASETS  # mock pixels must be 0 or 1 there
    with tfds.testing.mock_data(num_examples=512, max_value=1 if binary else None):
        final = training.train_and_evaluate(config, str(tmp_path))
    assert final, config_file
    assert all(np.isfinite(v) for k, v in final.items() if k.startswith("train/"))


# --- a new family: one module, one registry line, one config -------------------------------------


class LinearAE(base.Model):
    """A toy family, as a user would write it in autoencoders/models/linear_ae.py: a linear code
    (the network's activation is left to the config), and squared-error-like reconstruction."""

    encoder_outputs_code = True

    def loss(self, params, batch, rng):
        del rng
        x = batch["x"]
        nll, sq_err = self.recon_terms(params, self.encode(params, x), x)
        code_norm = jnp.sum(self.encode(params, x) ** 2, axis=-1)
        return base.mean_loss(
            {"loss": nll, self.recon_name: nll, "sq_err": sq_err, "code_sq_norm": code_norm}
        )

    def term_units(self):
        return {**super().term_units(), "code_sq_norm": "‖f(x)‖² per image (code units²)"}


TOY_CONFIG = '''
"""The toy linear AE: python -m experiments.train --config=<this file> --workdir=runs/toy."""
from autoencoders import sweeps
from configs import common

SWEEPS = ("latent",)


def get_config(arg=None):
    c = common.base_config()
    c.model.family = "linear_ae"
    c.model.latent_dim = 2
    common.apply_likelihood(c, "gaussian")
    common.apply_dataset(c, "digits")
    c.network.hidden = (16,)
    c.train.num_epochs = 2
    return c


def get_sweep(name):
    return sweeps.axis("model.latent_dim", [2, 3])
'''


def test_a_new_family_trains_evaluates_and_appears_in_a_sweep_report(tmp_path, monkeypatch):
    monkeypatch.setitem(models.FAMILIES, "linear_ae", LinearAE)  # the registry line
    config_file = tmp_path / "linear_ae.py"
    config_file.write_text(TOY_CONFIG)
    monkeypatch.chdir(REPO)  # `configs.common` is imported from the repository
    sweep_dir = tmp_path / "sweep"
    plan = sweeps.plan_from_command(f"{config_file}:sweep=latent", str(sweep_dir))
    launch.write_manifest(plan)
    for run in plan.runs:  # what `experiments.sweep` runs, in this process (the registry line)
        training.train_and_evaluate(launch.resolve_config(run.argv), run.workdir)
    options = evaluation.Options(parts=("density", "reduction"), manifold_examples=100)
    evaluated = evaluation.evaluate_run(plan.runs[0].workdir, options)
    assert "code_sq_norm" in evaluated["density"]
    assert "code" in evaluated["density"]["code_sq_norm"]["unit"]
    start = metrics.events(str(pathlib.Path(plan.runs[0].workdir) / "metrics.jsonl"), "start")[-1]
    assert start["headline"] == "recon_nll"
    paths = results.write_report(str(sweep_dir), str(sweep_dir / "report"), x="latent_dim")
    table = pathlib.Path(paths[0]).read_text()
    assert "code_sq_norm" in table and table.count("\n| ") >= 2, table
    assert json.loads((sweep_dir / "manifest.json").read_text())["runs"][1]["name"] == (
        "latent_dim=3"
    )


def test_vmapped_members_of_a_multi_phase_family_are_checked_like_separate_runs():
    config = tiny_family_config("aae", "prior=mixture")
    with config.unlocked():
        config.vmap = {"learning_rate": (1e-3, 2e-3), "disc_learning_rate_factor": (0.5, 1.0)}
    training.check_config(config)  # each member is a valid run; the optimizer is not state
    with config.unlocked():
        config.vmap = {"generator_steps": (1, 2)}
    with pytest.raises(ValueError, match="not a float"):
        training.check_config(config)


def test_no_library_module_names_a_family():
    """Nothing outside models/ branches on a family's name."""
    names = [f'"{family}"' for family in models.FAMILIES]
    for path in (REPO / "autoencoders").glob("*.py"):
        text = path.read_text()
        assert not [n for n in names if n in text], path
