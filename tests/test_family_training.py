"""Each new family trains on the digits with its shipped config (shrunk): the loss falls, its
metrics are written, and a run cut short and resumed ends where the uninterrupted run did."""

import pytest

from autoencoders import metrics
from tests.family_helpers import tiny_family_config
from tests.helpers import assert_resume_matches

# (shipped config, config argument, overrides, an eval metric the family must report)
VARIANTS = {
    "dae": ("dae", "", {}, "clean_recon_nll"),
    "dvae": ("dvae", "", {}, "clean_neg_elbo"),
    "cae": ("cae", "", {}, "jacobian_sq_norm"),
    "scae": ("scae", "", {}, "code_shift_sq"),
    "iwae": ("iwae", "", {}, "neg_iwae_bound"),
    "beta_vae": ("beta_vae", "", {}, "kl"),
    # Other settings of the same families (their maths is tested in test_contractive/test_iwae).
    "cae_projection": ("cae", "", {"model.jacobian": "projection"}, "jacobian_sq_norm"),
    "cae_closed_form": (  # the papers' one-layer CAE, as docs/reproductions/dae_cae_features.md
        "cae",
        "",
        {"model.jacobian": "closed_form", "network.hidden": (), "model.code_activation": "sigmoid"},
        "jacobian_sq_norm",
    ),
    "iwae_vae_objective": ("iwae", "objective=vae", {}, "neg_iwae_bound"),
}
SLOW_VARIANTS = ("cae_projection", "iwae_vae_objective")


@pytest.mark.parametrize(
    "variant",
    [pytest.param(v, marks=pytest.mark.slow) if v in SLOW_VARIANTS else v for v in VARIANTS],
)
def test_trains_and_resumes(variant, tmp_path):
    config_name, arg, overrides, metric = VARIANTS[variant]
    config = tiny_family_config(config_name, arg, **{"train.num_epochs": 3, **overrides})
    assert_resume_matches(config, tmp_path)  # trains tmp_path/full uninterrupted, then resumes
    log = str(tmp_path / "full" / "metrics.jsonl")
    train = metrics.latest_by_epoch(log, "train")
    assert train[3]["loss"] < train[1]["loss"], [train[e]["loss"] for e in sorted(train)]
    assert metric in metrics.latest_by_epoch(log, "test")[3]


def test_shipped_family_fields_reach_the_tiny_config():
    assert tiny_family_config("beta_vae").model.beta == 4.0
    iwae = tiny_family_config("iwae", "k=7,objective=vae").model
    assert (iwae.family, iwae.num_samples, iwae.objective) == ("iwae", 7, "vae")
    assert tiny_family_config("dvae").model.corruption == "salt_and_pepper"
