"""Every notebook runs top to bottom: its code cells in order, in one namespace, with the cell
tagged 'parameters' overridden to a tiny setting (papermill's convention)."""

from __future__ import annotations

import json
import pathlib

import matplotlib
import matplotlib.pyplot as plt
import pytest

from tests import helpers

NOTEBOOKS = sorted((helpers.REPO / "notebooks").glob("*.ipynb"))
TINY = {"EPOCHS": 2}


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: pathlib.Path, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()) or plt.close("all"))
    monkeypatch.chdir(helpers.REPO)  # as Jupyter started from the repository root
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict = {}
    for index, cell in enumerate(cells):
        code = compile("".join(cell["source"]), f"{path.name}, code cell {index}", "exec")
        exec(code, namespace)
        if "parameters" in cell["metadata"].get("tags", []):
            namespace.update(TINY, WORKDIR=str(tmp_path / "run"))
    assert shown  # its figures were drawn
    assert (tmp_path / "run" / "metrics.jsonl").exists()
