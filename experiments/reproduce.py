"""Regenerate a paper's result: its runs, their evaluation, the figure, its page and ledger row.

  python -m experiments.reproduce NAME [--budget=tiny|cpu|paper] [--dry_run] [--workers=2]
      [--root=runs/reproductions] [--docs_dir=docs]
  python -m experiments.reproduce NAME --measure=WORKDIR [--measure=WORKDIR ...]

NAME is a file of configs/reproductions/ (its docstring gives the command and the result to
expect). The runs train under `<root>/NAME/<budget>/` through the sweep machinery (finished runs
are skipped, interrupted ones resume; `--workers=0` trains them in this process, one after
another); each finished run is evaluated and measured once; the page is
`<docs_dir>/reproductions/NAME.md` with its figure, and its row of `<docs_dir>/reproductions.md`
is replaced. `--dry_run` prints the runs, their commands and status, what is evaluated and the
rows, and trains nothing. Exits non-zero if any run failed.

`--measure=WORKDIR` applies NAME's per-run measure (e.g. dae_cae_features' fine-tuned classifier)
to a run trained outside the reproduction, or to a vmapped member (`WORKDIR/members/<member>`),
and prints its numbers: how to try a variant the reproduction's way. It trains and writes nothing.
"""

from __future__ import annotations

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

import os  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from autoencoders import reproduce  # noqa: E402
from experiments import cli  # noqa: E402

_BUDGET = flags.DEFINE_enum(
    "budget",
    "cpu",
    list(reproduce.BUDGETS),
    "tiny: seconds on the embedded digits (tests); cpu: a shortened schedule, ~2 h on 2 cores; "
    "paper: the paper's schedule.",
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the runs and what is evaluated; run none.")
_ROOT = flags.DEFINE_string("root", "runs/reproductions", "Run directories go under here.")
_DOCS_DIR = flags.DEFINE_string("docs_dir", "docs", "reproductions.md and reproductions/ go here.")
_MEASURE = flags.DEFINE_multi_string(
    "measure", [], "Print NAME's per-run measures of these run directories; train nothing."
)
_WORKERS = flags.DEFINE_integer(
    "workers", 1, "Runs trained at once (0: in this process, one after another).", lower_bound=0
)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flags, and exactly one positional argument: the reproduction's name."""
    program, *positional = cli.parse_flags(argv)
    if len(positional) != 1:
        names = ", ".join(reproduce.available())
        raise app.UsageError(f"name one reproduction, e.g. hinton2006 (declared: {names}).")
    return [program, *positional]


@interrupts.exits_cleanly()
def main(argv: list[str]) -> None:
    cli.register_threefry()
    name = argv[1]
    if name not in reproduce.available():
        names = ", ".join(reproduce.available())
        raise ValueError(f"no reproduction {name!r} in {reproduce.CONFIG_DIR}; declared: {names}.")
    if _MEASURE.value:
        for line in reproduce.measure_workdirs(name, _BUDGET.value, _MEASURE.value):
            print(line)
        return
    if not _DRY_RUN.value:
        cli.check_writable_dir("root", _ROOT.value)
        cli.check_writable_dir("docs_dir", _DOCS_DIR.value)
        os.makedirs(os.path.join(_DOCS_DIR.value, "reproductions"), exist_ok=True)
    status = reproduce.run_command(
        name, _BUDGET.value, _ROOT.value, _DOCS_DIR.value, _WORKERS.value, _DRY_RUN.value
    )
    if status:
        sys.exit(status)


if __name__ == "__main__":
    cli.run(main, parse_flags)
