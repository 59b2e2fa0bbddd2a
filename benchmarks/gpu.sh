#!/usr/bin/env bash
# The GPU benchmark in one command, from the repository root, on a bare machine (no internet):
#
#     bash benchmarks/gpu.sh [any flag of benchmarks.gpu / benchmarks.run]
#
# Needs python with jax (CUDA plugin), flax, optax, orbax-checkpoint, absl, numpy, scipy,
# scikit-learn, matplotlib; torch (CUDA) for the PyTorch column (skipped with one line without it).
# No TensorFlow, TFDS, CLU or internet: the data are synthetic, and ml_collections (pure Python,
# used by configs/) comes from benchmarks/vendor/ml_collections-*.whl, a wheel that Python imports
# as a zip; it is put at the END of the path, so an installed ml_collections wins.
#
# $PYTHON: the interpreter (default python3). BENCH_QUICK=1 (or --quick): a tiny smoke run.
# Writes docs/benchmarks_gpu.md (and its headline rows into docs/benchmarks.md's GPU section) and,
# if $OUT is set, $OUT/benchmarks_gpu.md and $OUT/gpu_log.txt (a record brought back from $OUT to
# docs/: `python -m benchmarks.gpu --summary_only` rewrites that section from it);
# prints the record. A failing section prints one line and the rest still runs; one not started
# 400 s in is skipped (--deadline_s; one running then is not cut short), to end within 8 minutes.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
vendor=""
for wheel in "$PWD"/benchmarks/vendor/*.whl; do
  [ -e "$wheel" ] && vendor="$vendor:$wheel"
done
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}$vendor"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
log=/dev/null
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT" && log="$OUT/gpu_log.txt"
fi

{
  echo "== benchmarks/gpu.sh on $(hostname) at $(date -Is)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || echo "nvidia-smi -L failed"
  else
    echo "nvidia-smi: not found"
  fi
  "$PYTHON" - <<'EOF' || echo "version check failed"
import importlib.metadata as m, platform
print("Python", platform.python_version())
for p in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
          "orbax-checkpoint", "numpy", "torch", "ml_collections", "PyYAML"):
    try:
        print(f"  {p} {m.version(p)}")
    except m.PackageNotFoundError:
        pass
import jax
print("jax.devices():", jax.devices())
try:
    import torch
    print("torch.cuda.is_available():", torch.cuda.is_available())
except ImportError as e:
    print("torch: not importable:", e)
EOF
  start=$(date +%s)
  "$PYTHON" -m benchmarks.gpu "$@"
  status=$?
  echo "== benchmarks.gpu exit status $status after $(($(date +%s) - start)) s"
  exit $status
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
