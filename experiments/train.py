"""Train a model from a config.

  python -m experiments.train --config=configs/vae.py --workdir=runs/vae \
      --config.model.latent_dim=2

Re-running the same command resumes from the latest checkpoint in --workdir. SIGINT (Ctrl-C) or
SIGTERM stops it at the next epoch boundary, with that epoch saved; the same signal again, at once.
"""

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from autoencoders import launch, training  # noqa: E402
from experiments import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and config.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir even though its config.json differs."
)
flags.mark_flags_as_required(["config", "workdir"])


@interrupts.exits_cleanly()
def main(argv: list[str]) -> None:
    cli.start(argv)
    cli.check_writable_dir("workdir", _WORKDIR.value)
    training.train_and_evaluate(
        _CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value
    )


def parse_flags(argv: list[str]) -> list[str]:
    """`cli.parse_flags`, with the config file's errors (no such file, a refused argument) and the
    overrides' (no such field) as one line naming the flag (`launch.config_flag_message`)."""
    try:
        rest = cli.parse_flags(argv)
        _CONFIG.value.keys()  # a config file that failed to load raises only when read
    except (flags.Error, KeyError, AttributeError, OSError, SyntaxError) as e:
        raise ValueError(launch.config_flag_message(e, argv)) from e
    return rest


if __name__ == "__main__":
    cli.run(main, parse_flags)
