"""Train a model from a config.

  python -m experiments.train --config=configs/vae.py --workdir=runs/vae \
      --config.model.latent_dim=2

Re-running the same command resumes from the latest checkpoint in --workdir. SIGINT (Ctrl-C) or
SIGTERM stops it at the next epoch boundary, with that epoch saved; the same signal again, at once.

Multi-host: run the same command as several processes, under `srun` (JAX reads the task layout from
SLURM's environment) or with --coordinator_address=host:port --num_processes=N --process_id=i on
each (see `autoencoders.parallel`).
"""

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from autoencoders import launch, parallel, training  # noqa: E402
from experiments import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and config.")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir even though its config.json differs."
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address",
    None,
    "Multi-process run: host:port of process 0's coordinator, the same on every process.",
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Multi-process run: how many processes train this run together."
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Multi-process run: this process's number, 0 .. num_processes-1."
)
flags.mark_flags_as_required(["config", "workdir"])


@interrupts.exits_cleanly()
def main(argv: list[str]) -> None:
    cli.start(argv)
    parallel.initialize(*_processes())
    if not parallel.is_primary():  # process 0 reports progress for all
        logging.set_verbosity(logging.WARNING)
    cli.check_writable_dir("workdir", _WORKDIR.value)
    training.train_and_evaluate(
        _CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value
    )


def _processes() -> tuple[str | None, int | None, int | None]:
    """(coordinator address, number of processes, process id) from the flags, given together or
    not at all; (None, None, None) for a single process (or one that `srun` describes)."""
    given = {
        "coordinator_address": _COORDINATOR.value,
        "num_processes": _NUM_PROCESSES.value,
        "process_id": _PROCESS_ID.value,
    }
    missing = [f"--{name}" for name, value in given.items() if value is None]
    if len(missing) == len(given):
        return None, None, None
    if missing:
        raise ValueError(
            "--coordinator_address, --num_processes and --process_id go together: "
            f"{', '.join(missing)} missing."
        )
    host, _, port = _COORDINATOR.value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--coordinator_address={_COORDINATOR.value}: must be host:port.")
    if _NUM_PROCESSES.value < 1:
        raise ValueError(f"--num_processes={_NUM_PROCESSES.value}: must be >= 1.")
    if not 0 <= _PROCESS_ID.value < _NUM_PROCESSES.value:
        raise ValueError(
            f"--process_id={_PROCESS_ID.value}: must be in 0..{_NUM_PROCESSES.value - 1} for "
            f"--num_processes={_NUM_PROCESSES.value}."
        )
    if _NUM_PROCESSES.value == 1:
        return None, None, None  # a single process, exactly as without the flags
    return _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value


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
