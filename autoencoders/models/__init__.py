"""Model families. Adding one: a new module with a `base.Model` subclass, plus one line here."""

from __future__ import annotations

from autoencoders.data import DataSpec
from autoencoders.models import aae, aae_cluster, ae, cae, cvae, dae, hvae, iwae, m2, scae, vae
from autoencoders.models.base import Model

FAMILIES: dict[str, type[Model]] = {
    "ae": ae.Autoencoder,
    "vae": vae.VAE,
    "dae": dae.DenoisingAE,
    "dvae": dae.DenoisingVAE,
    "cae": cae.ContractiveAE,
    "scae": scae.StochasticContractiveAE,
    "iwae": iwae.IWAE,
    "hvae": hvae.HierarchicalVAE,
    "cvae": cvae.ConditionalVAE,
    "m2": m2.M2,
    "aae": aae.AdversarialAE,
    "aae_cluster": aae_cluster.ClusteringAAE,
}


def family(name: str) -> type[Model]:
    if name not in FAMILIES:
        raise ValueError(f"config.model.family={name!r}: must be one of {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def make(config, spec: DataSpec) -> Model:
    return family(config.model.family)(config, spec)
