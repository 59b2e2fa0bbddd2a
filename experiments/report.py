"""Tables and plots of a sweep, from what its runs wrote (config.json, metrics.jsonl, eval.json).

  python -m experiments.report --sweep_dir=runs/s1 [--out=runs/s1/report] [--x=latent_dim]

Writes to --out (default <sweep_dir>/report):
  table.md, table.csv     final metrics per setting: mean ± std (ddof=1) over seeds (an outer
                          `seed` axis or vmapped seed members), with units in the column headers
  headline_vs_<x>.png     each run's headline metric (e.g. a VAE's neg_elbo) vs --x (e.g. latent
                          dimension), one panel per setting of the other swept keys
  curves_<...>.png        training curves as in Kingma & Welling's Figure 2: the headline vs
                          training examples seen (log x), test solid and train dashed, one line per
                          --x value

"Final" is each run's last evaluated epoch (the table's `epochs` column says which); a run with no
evaluation yet is listed as missing. The library behind it is `autoencoders/results.py`.
"""

from __future__ import annotations

import os

from absl import flags

from autoencoders import results
from experiments import cli

_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "The sweep's directory (with manifest.json).")
_OUT = flags.DEFINE_string("out", "", "Where to write the report (default <sweep_dir>/report).")
_X = flags.DEFINE_string(
    "x", None, "A swept key (short name), the plots' x axis; default latent_dim where it is swept."
)
flags.mark_flags_as_required(["sweep_dir"])


def main(argv: list[str]) -> None:
    cli.start(argv)
    out = _OUT.value or os.path.join(_SWEEP_DIR.value, "report")
    cli.check_writable_dir("out", out)
    paths = results.write_report(_SWEEP_DIR.value, out, _X.value)
    with open(paths[0]) as f:
        print(f.read())
    print("\n".join(paths))


if __name__ == "__main__":
    cli.run(main)
