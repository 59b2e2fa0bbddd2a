"""Train a model from a config.

  python -m experiments.train --config=configs/vae.py --workdir=runs/vae \
      --config.model.latent_dim=2

Re-running the same command resumes from the latest checkpoint in --workdir.
"""

from absl import app, flags
from ml_collections import config_flags

from autoencoders import training
from autoencoders import workdir as workdirs
from experiments import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and config.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir even though its config.json differs."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    cli.start(argv)
    # Config and data errors, a diverged run, and a workdir another run is training in are the
    # user's to fix: a message, not a trace.
    with cli.user_errors(ValueError, FloatingPointError, workdirs.WorkdirInUse):
        training.train_and_evaluate(
            _CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value
        )


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with config errors (unknown field, bad type) as one clear line."""
    try:
        return app.parse_flags_with_usage(argv)
    except AttributeError as e:  # ml_collections: an override names no existing field
        cause = e.args[0] if e.args else e
        detail = cause.args[0] if isinstance(cause, KeyError) and cause.args else cause
        raise SystemExit(f"error: no such config field {detail}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
