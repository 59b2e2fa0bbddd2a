"""Reports: a sweep's tables, plots and report.html, or one run's report.html.

  python -m experiments.report --sweep_dir=runs/s1 [--out=runs/s1/report] [--x=latent_dim]
  python -m experiments.report --workdir=runs/vae

For a sweep, writes to --out (default <sweep_dir>/report):
  table.md, table.csv     final metrics per setting: mean ± std (ddof=1) over seeds (an outer
                          `seed` axis or vmapped seed members), with units in the column headers
  headline_vs_<x>.png     each run's headline metric (e.g. a VAE's neg_elbo) vs --x (e.g. latent
                          dimension), one panel per setting of the other swept keys
  curves_<...>.png        training curves as in Kingma & Welling's Figure 2: the headline vs
                          training examples seen (log x), test solid and train dashed, one line per
                          --x value
  report.html             all of it on one self-contained page (sortable table, interactive
                          curves, runs without results with their log tail), linking each run's
                          page; a run's page that is missing is written first (--run_pages)

"Final" is each run's last evaluated epoch (the table's `epochs` column says which); a run with no
evaluation yet is listed as missing. For one run (--workdir), writes <workdir>/report.html from its
latest checkpoint and eval.json (`experiments.evaluate` writes it too). The libraries behind it are
`autoencoders/results.py`, `autoencoders/run_page.py` and `autoencoders/sweep_page.py`.
"""

from __future__ import annotations

import os

from absl import app, flags

from autoencoders import results, run_page, sweep_page
from experiments import cli

_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "A sweep's directory (with manifest.json).")
_WORKDIR = flags.DEFINE_string("workdir", None, "A run's directory: writes its report.html only.")
_OUT = flags.DEFINE_string(
    "out", "", "Where to write a sweep's report (default <sweep_dir>/report)."
)
_X = flags.DEFINE_string(
    "x", None, "A swept key (short name), the plots' x axis; default latent_dim where it is swept."
)
_RUN_PAGES = flags.DEFINE_bool(
    "run_pages", True, "Also write the report.html of each run of the sweep that has none."
)


def main(argv: list[str]) -> None:
    cli.start(argv)
    if (_SWEEP_DIR.value is None) == (_WORKDIR.value is None):
        raise app.UsageError("Give one of --sweep_dir (a sweep's report) or --workdir (a run's).")
    if _WORKDIR.value is not None:
        cli.check_writable_dir("workdir", _WORKDIR.value)
        print(run_page.write_run_page_of(_WORKDIR.value))
        return
    out = _OUT.value or os.path.join(_SWEEP_DIR.value, "report")
    cli.check_writable_dir("out", out)
    paths = results.write_report(_SWEEP_DIR.value, out, _X.value)
    paths.append(
        sweep_page.write_sweep_page(_SWEEP_DIR.value, out, _X.value, paths, _RUN_PAGES.value)
    )
    with open(paths[0]) as f:
        print(f.read())
    print("\n".join(paths))


if __name__ == "__main__":
    cli.run(main)
