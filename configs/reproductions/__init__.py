"""Reproductions of published results, one file each (`python -m experiments.reproduce NAME`).

Each `NAME.py` declares `get_reproduction(budget)` -> `autoencoders.reproduce.Reproduction`, for the
budgets `tiny` (seconds on the embedded digits, for tests), `cpu` (a documented shortened schedule,
about 2 hours on 2 CPU cores) and `paper` (the paper's schedule); its docstring gives the command
and the result to expect. The ledger of results is docs/reproductions.md.
"""
