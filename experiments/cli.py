"""What every command shares: its start (no stray arguments, INFO logging without library noise,
the faster CPU lowering of JAX's random bits), how it reports errors (`run`: one line naming the
flag, field or file, no stack trace, unless --debug), checks of its path flags before any work,
and flags generated from an options dataclass."""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import typing
from collections.abc import Callable, Mapping
from typing import Any

from absl import app, flags, logging

from autoencoders import threefry
from autoencoders import workdir as workdirs

DEBUG_ENV = "AUTOENCODERS_DEBUG"
flags.DEFINE_bool("debug", False, f"On an error, show its traceback (or set {DEBUG_ENV}=1).")

# Errors about the user's input or files; any other kind is named in the line (a bug, likely).
_USER_ERRORS = (
    ValueError,
    OSError,
    FloatingPointError,
    flags.Error,
    app.UsageError,
    workdirs.WorkdirInUse,
)


class ConsoleFormat(logging.logging.Formatter):
    """One short line per event on the console: the message, prefixed by its level unless INFO
    (absl's prefix of date, thread and source line stays in log.txt's fuller record)."""

    def format(self, record: logging.logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno != logging.logging.INFO:
            text = f"{record.levelname.lower()}: {text}"
        return text


def quiet_console() -> None:
    """The console handler's short format and library filter (`workdir.QuietLibraries`): set on
    import, so lines logged while flags are parsed (JAX's backend search) are already quiet."""
    handler = logging.get_absl_handler()
    handler.setFormatter(ConsoleFormat())
    handler.addFilter(workdirs.QuietLibraries())


quiet_console()


def start(argv: list[str]) -> None:
    no_stray_arguments(argv)
    logging.set_verbosity(logging.INFO)
    register_threefry()


def no_stray_arguments(argv: list[str]) -> None:
    """A UsageError for arguments absl left over (everything a command takes is a --flag)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {' '.join(argv[1:])}: give options as --flags.")


def register_threefry() -> bool:
    """Threefry-2x32 straight-line on CPU (`autoencoders.threefry`: the same bits, faster), unless
    AUTOENCODERS_ROLLED_THREEFRY=1; JAX's own lowering, with one warning, where JAX's API changed.
    Every entry point calls this before it compiles anything; importing the library does not."""
    return threefry.register_unrolled_cpu_lowering()


# ---------------------------------------------------------------------------------------------
# Running a command: every error one line
# ---------------------------------------------------------------------------------------------


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, errors raised (`run` prints them) instead of printed with usage."""
    return flags.FLAGS(argv)


def run(main: Callable[[list[str]], None], parse: Callable = parse_flags) -> None:
    """`app.run(main)` with the flags read by `parse`; see `call`."""
    app.run(_one_line_errors(main), flags_parser=_one_line_errors(parse))


def call(main: Callable[[list[str]], None], argv: list[str], parse: Callable = parse_flags):
    """What `run` does, in this process and without absl's once-per-process set-up: an error in
    `parse` or `main` exits with status 1 and one line, `error: <message>`, printed once; with
    --debug or AUTOENCODERS_DEBUG=1 it is raised with its traceback instead."""
    return _one_line_errors(main)(_one_line_errors(parse)(argv))


def _one_line_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as e:
            if flags.FLAGS["debug"].value or os.environ.get(DEBUG_ENV) == "1":
                raise
            raise SystemExit(f"error: {_one_line(e)}") from None

    return wrapper


def _one_line(error: Exception) -> str:
    """An error's message on one line; the kind of error too unless it is one of the user's."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if isinstance(error, _USER_ERRORS):
        return text
    return f"{': '.join(filter(None, [type(error).__name__, text]))} (--debug shows the traceback)"


def check_writable_dir(flag: str, path: str) -> None:
    """ValueError naming `--flag` unless `path` is a directory this process can write in, or can
    be made (its nearest existing parent is such a directory)."""
    if not path:
        raise ValueError(f"--{flag} is empty: give a directory.")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    what = "" if existing == os.path.abspath(path) else f" (its parent {existing})"
    if not os.path.isdir(existing):
        raise ValueError(f"--{flag}={path}{what} is a file; it must be a directory.")
    try:  # a real probe: as root, os.access says yes to read-only mounts and to /proc
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as e:
        raise ValueError(
            f"--{flag}={path}{what} is not writable ({e.strerror}); choose one you can write in."
        ) from None


# ---------------------------------------------------------------------------------------------
# Flags from a dataclass
# ---------------------------------------------------------------------------------------------


def define_dataclass_flags(
    cls: type, flag_values: flags.FlagValues = flags.FLAGS
) -> dict[str, flags.FlagHolder]:
    """One flag per field of the dataclass `cls`, named as the field, defaulting to its default,
    typed by it (bool, int, float, str, and tuples as comma lists: `--report_ks=1,10`), with the
    field's `metadata['help']` as help (`evaluation.option`). {field name: flag holder}."""
    defaults = cls()
    hints = typing.get_type_hints(cls)
    holders = {}
    for field in dataclasses.fields(cls):
        name, default = field.name, getattr(defaults, field.name)
        if "help" not in field.metadata:
            raise TypeError(
                f"{cls.__name__}.{name}: declare it as evaluation.option(default, help)."
            )
        text, kw = field.metadata["help"], {"flag_values": flag_values}
        if isinstance(default, bool):
            holders[name] = flags.DEFINE_bool(name, default, text, **kw)
        elif isinstance(default, int):
            holders[name] = flags.DEFINE_integer(name, default, text, **kw)
        elif isinstance(default, float):
            holders[name] = flags.DEFINE_float(name, default, text, **kw)
        elif isinstance(default, str):
            holders[name] = flags.DEFINE_string(name, default, text, **kw)
        elif isinstance(default, tuple):
            text += f" (comma list of {_item_type(hints[name], default).__name__})"
            holders[name] = flags.DEFINE_list(name, [str(v) for v in default], text, **kw)
        else:
            raise TypeError(f"{cls.__name__}.{name}: no flag type for {type(default).__name__}.")
    return holders


def dataclass_from_flags(
    cls: type, holders: Mapping[str, flags.FlagHolder], **overrides: Any
) -> Any:
    """`cls` built from the flags `define_dataclass_flags` made (comma lists back to tuples), with
    `overrides` in place of their flags."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    values = {}
    for name, holder in holders.items():
        value = holder.value
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            item = _item_type(hints[name], default)
            value = tuple(_parse_item(item, name, v) for v in value)
        values[name] = value
    return cls(**{**values, **overrides})


def _item_type(hint: Any, default: tuple) -> type:
    """The element type of a tuple field: from `tuple[int, ...]`, else from its default's items."""
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    if args and all(a is args[0] for a in args) and args[0] in (bool, int, float, str):
        return args[0]
    return type(default[0]) if default else str


def _parse_item(item: type, name: str, text: str) -> Any:
    try:
        return item(text)
    except ValueError:
        raise ValueError(f"--{name}: {text!r} is not of type {item.__name__}.") from None
