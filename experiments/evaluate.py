"""Evaluate a run: writes workdir/eval.json and workdir/figures/*.png.

  python -m experiments.evaluate --workdir=runs/vae
  python -m experiments.evaluate --workdir=runs/vae --num_samples=100 --parts=density,figures

Works on a finished run or on one still training (its latest checkpoint). See
`autoencoders.evaluation` for what each part measures and in which unit.
"""

from absl import app, flags, logging

from autoencoders import evaluation
from experiments import cli

_DEFAULTS = evaluation.Options()
_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory (config.json, checkpoints/).")
_EPOCH = flags.DEFINE_integer("epoch", None, "Checkpoint to evaluate; default the latest.")
_PARTS = flags.DEFINE_list(
    "parts", list(_DEFAULTS.parts), f"Parts to run, among {', '.join(evaluation.PARTS)}."
)
_SEED = flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of every random choice.")
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples", _DEFAULTS.num_samples, "k, importance samples per test image (IWAE estimate)."
)
_REPORT_KS = flags.DEFINE_list(
    "report_ks",
    [str(k) for k in _DEFAULTS.report_ks],
    "Smaller k also reported (prefixes of the same samples).",
)
_SAMPLE_CHUNK = flags.DEFINE_integer(
    "sample_chunk", _DEFAULTS.sample_chunk, "Importance samples drawn at once per image."
)
_EXAMPLE_BATCH = flags.DEFINE_integer(
    "example_batch", _DEFAULTS.example_batch, "Images vectorised at once in the density part."
)
_DENSITY_EXAMPLES = flags.DEFINE_integer(
    "density_examples", _DEFAULTS.density_examples, "Test images for the IS estimate; 0 = all."
)
_MANIFOLD_EXAMPLES = flags.DEFINE_integer(
    "manifold_examples", _DEFAULTS.manifold_examples, "Test images embedded in 2-D."
)
_LATENT_PROJECTION = flags.DEFINE_enum(
    "latent_projection", _DEFAULTS.latent_projection, ["pca", "tsne"], "Latents > 2-D to 2-D."
)
_PROBE_TRAIN = flags.DEFINE_integer(
    "probe_train_examples", _DEFAULTS.probe_train_examples, "Training images for the probes."
)
_PROBE_TEST = flags.DEFINE_integer(
    "probe_test_examples", _DEFAULTS.probe_test_examples, "Test images for the probes."
)
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    cli.start(argv)
    with cli.user_errors(ValueError, FileNotFoundError):
        options = evaluation.Options(
            parts=tuple(_PARTS.value),
            seed=_SEED.value,
            num_samples=_NUM_SAMPLES.value,
            report_ks=tuple(int(k) for k in _REPORT_KS.value),
            sample_chunk=_SAMPLE_CHUNK.value,
            example_batch=_EXAMPLE_BATCH.value,
            density_examples=_DENSITY_EXAMPLES.value,
            manifold_examples=_MANIFOLD_EXAMPLES.value,
            latent_projection=_LATENT_PROJECTION.value,
            probe_train_examples=_PROBE_TRAIN.value,
            probe_test_examples=_PROBE_TEST.value,
        )
        results = evaluation.evaluate_run(_WORKDIR.value, options, _EPOCH.value)
    logging.info("%s", evaluation.summary(results))
    logging.info("Wrote %s/eval.json", _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
