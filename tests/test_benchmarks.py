"""benchmarks/run.py works end to end on the smallest setting and prints a parsable table."""

import importlib.util

from benchmarks import report, run


def test_tiny_benchmark_table_parses(tmp_path):
    has_torch = importlib.util.find_spec("torch") is not None
    out = tmp_path / "benchmarks.md"
    argv = [
        "--benchmarks=peak,train",
        "--models=iwae",
        "--steps=2",
        "--repeats=1",
        "--num_train=100",
        "--peak_size=128",
        "--torch_warmup_steps=1",
        f"--markdown_out={out}",
    ]
    text = run.main(argv if has_torch else [*argv, "--no_torch"])
    assert out.read_text() == text
    tables = report.parse_tables(text)
    (row,) = tables[run.TRAIN_TABLE]
    assert row["model"].startswith("IWAE-paper VAE") and row["steps"] == "2"
    assert report.parse_number(row["JAX steps/s"]) > 0
    assert report.parse_number(row["JAX % of peak"]) > 0
    if has_torch:
        assert report.parse_number(row["PyTorch steps/s"]) > 0
        assert report.parse_number(row["JAX/PyTorch"]) > 0
    else:
        assert row["PyTorch steps/s"] == "—"
    (split,) = tables["Where a JAX training step's time goes"]
    for column in ("JAX step ms", "matmuls alone ms", "optimizer alone ms"):
        assert report.parse_number(split[column]) > 0, column
    (peak,) = tables["Matmul peak (float32 128×128, best of 3 after a warm-up)"]
    assert peak["measured before"].endswith("training")
    (flops,) = tables["Training FLOPs"]
    if has_torch:
        assert flops["params JAX"] == flops["params PyTorch"]
