"""Speed benchmarks: this codebase's compiled training loop against a plain PyTorch eager reference.

`python -m benchmarks.run --help`. Not part of the test suite (tests/test_benchmarks.py only checks
that a tiny run works and its table parses).
"""
