"""Evaluate a run: writes workdir/eval.json and workdir/figures/*.png.

  python -m experiments.evaluate --workdir=runs/vae
  python -m experiments.evaluate --workdir=runs/vae --num_samples=100 --parts=density,figures

Works on a finished run or on one still training (its latest checkpoint). See
`autoencoders.evaluation` for what each part measures and in which unit. Besides --workdir and
--epoch, every field of `evaluation.Options` is a flag of the same name (`--help` lists them);
tuples are comma lists (`--report_ks=1,10`).
"""

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

from absl import flags, logging  # noqa: E402

from autoencoders import evaluation  # noqa: E402
from experiments import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's directory (config.json, checkpoints/).")
_EPOCH = flags.DEFINE_integer(
    "epoch", None, "Checkpoint to evaluate; default the latest.", lower_bound=1
)
_OPTIONS = cli.define_dataclass_flags(evaluation.Options)
for _name in _OPTIONS:
    flags.declare_key_flag(_name)  # listed by --help, as this module's own flags
flags.mark_flags_as_required(["workdir"])


def options_from_flags() -> evaluation.Options:
    """`evaluation.Options` from the flags. Report k above --num_samples are dropped (with a log
    line) unless --report_ks was given, so `--num_samples=100` alone works; given, they are
    refused."""
    overrides = {}
    report_ks, num_samples = _OPTIONS.get("report_ks"), _OPTIONS.get("num_samples")
    if report_ks is not None and num_samples is not None and not report_ks.present:
        ks = [int(k) for k in report_ks.value]
        dropped = [k for k in ks if k > num_samples.value]
        if dropped:
            logging.info(
                "report_ks: dropped %s (above --num_samples=%d; --report_ks chooses them)",
                ", ".join(map(str, dropped)),
                num_samples.value,
            )
            overrides["report_ks"] = tuple(k for k in ks if k <= num_samples.value)
    return cli.dataclass_from_flags(evaluation.Options, _OPTIONS, **overrides)


@interrupts.exits_cleanly(at_once=True)  # nothing to save: SIGINT or SIGTERM stops it at once
def main(argv: list[str]) -> None:
    cli.start(argv)
    options = options_from_flags()
    cli.check_writable_dir("workdir", _WORKDIR.value)
    results = evaluation.evaluate_run(_WORKDIR.value, options, _EPOCH.value)
    logging.info("%s", evaluation.summary(results))
    logging.info("Wrote %s/eval.json", _WORKDIR.value)


if __name__ == "__main__":
    cli.run(main)
