"""What every command shares: its start (no stray arguments, INFO logging without library noise)
and how it reports the errors a user fixes (a config, a path): one line, no stack trace."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from absl import app, logging

from autoencoders import training


def start(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(training.QuietLibraries())


@contextlib.contextmanager
def user_errors(*error_types: type[Exception]) -> Iterator[None]:
    """Turns these errors into a logged line and exit status 1 ("error: ...")."""
    try:
        yield
    except error_types as e:
        logging.error("%s", e)
        raise SystemExit(f"error: {e}") from None
