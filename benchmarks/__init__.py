"""Speed benchmarks: this codebase's compiled training loop against a plain PyTorch eager reference.

`python -m benchmarks.run --help`. Modules: run (the command line and the record), sections (the
timed sections and their tables), measure (timing whole programs), parts (timing their parts
alone), datasets, targets, report (Markdown), timing (wall clock), architectures and
torch_reference (the models); gpu and precision for the GPU record (`bash benchmarks/gpu.sh`).
Not part of the test suite (tests/test_benchmarks.py only checks that a tiny run works and its
tables parse).
"""
