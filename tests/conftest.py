"""Test-session setup shared by every test module."""

import contextlib
import glob
import os
import shutil
import tempfile

# Many tests compile the same small programs (a tiny VAE's epoch, its evaluation), in this process
# and in the command-line tests' subprocesses. JAX's persistent compilation cache, in a directory
# made fresh for the session, compiles each of them once. Set before JAX is imported, so the
# subprocesses inherit it through the environment. pytest-xdist's workers (`make test`) inherit
# the controller's directory and share it; the controller, which outlives them, removes it.
_WORKER = "PYTEST_XDIST_WORKER" in os.environ
_CACHE_DIR = (os.environ.get("JAX_COMPILATION_CACHE_DIR") if _WORKER else None) or tempfile.mkdtemp(
    prefix="autoencoders-tests-jax-cache-"
)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE_DIR
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# The tests compile hundreds of small programs and run each for milliseconds, so compiling is
# most of their time. LLVM's optimization of the generated code costs more than it saves (about a
# fifth of the suite's time on 2 cores), and XLA:CPU's MLIR fusion emitters compile slower than
# its older emitters (a third of a tiny reproduction's time). Set here for this process and the
# subprocesses alike, so that both sides of every comparison compile the same way; XLA's own
# (HLO) optimizations still run. A flag already in XLA_FLAGS keeps the value given there.
_FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")
for _flag in _FAST_COMPILE:
    _given = os.environ.get("XLA_FLAGS", "").split()
    if not any(given.split("=")[0] == _flag.split("=")[0] for given in _given):
        os.environ["XLA_FLAGS"] = " ".join([*_given, _flag])

# A training run on CPU compiles a short probe of its epoch twice, to pick the faster matrix-product
# library (autoencoders/cpu_matmuls.py): seconds that pay off over a real run, not over the
# suite's hundreds of tiny ones. The tests fix XLA's default; tests/test_cpu_matmuls.py runs the
# probe itself.
os.environ.setdefault("AUTOENCODERS_CPU_MATMULS", "ynnpack")

from autoencoders import threefry  # noqa: E402

# TFDS makes an empty temporary directory (`tempfile.mkdtemp("tfds")`, DatasetInfo's
# initialize_from_bucket) whenever it builds a dataset whose files are not on disk, as mock data
# does, and never removes it: ~170 a run, in this process and in the subprocesses.
_TFDS_LEFTOVERS = os.path.join(tempfile.gettempdir(), "tmp*tfds")
_TFDS_LEFTOVERS_BEFORE = set(glob.glob(_TFDS_LEFTOVERS))


def pytest_configure(config):
    # As the entry points do (experiments.cli.start, benchmarks.run): Threefry straight-line on CPU,
    # the same bits, faster, registered before anything compiles. `import autoencoders` alone
    # leaves JAX's lowering alone (tests/test_threefry.py).
    threefry.register_unrolled_cpu_lowering()


def pytest_unconfigure(config):
    if _WORKER:  # the others may still be using the cache, or a TFDS directory just made
        return
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
    for path in set(glob.glob(_TFDS_LEFTOVERS)) - _TFDS_LEFTOVERS_BEFORE:
        with contextlib.suppress(OSError):  # only if still empty
            os.rmdir(path)
