"""The command-line entry points: `python -m experiments.<train|evaluate|sweep|report>`."""

import os

# TensorFlow (TFDS's data loading; no model numerics) logs a few INFO
# lines (oneDNN, CPU features) when imported; a command's only output on a bad input should be its
# error line. Its warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
