"""What every command shares: its start (no stray arguments, INFO logging without library noise,
the faster CPU lowering of JAX's random bits), how it reports the errors a user fixes (a config, a
path): one line, no stack trace, and flags generated from an options dataclass."""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from absl import app, flags, logging

from autoencoders import threefry
from autoencoders import workdir as workdirs


def start(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(workdirs.QuietLibraries())
    register_threefry()


def register_threefry() -> bool:
    """Threefry-2x32 straight-line on CPU (`autoencoders.threefry`: the same bits, faster), unless
    AUTOENCODERS_ROLLED_THREEFRY=1; JAX's own lowering, with one warning, where JAX's API changed.
    Every entry point calls this before it compiles anything; importing the library does not."""
    return threefry.register_unrolled_cpu_lowering()


@contextlib.contextmanager
def user_errors(*error_types: type[Exception]) -> Iterator[None]:
    """Turns these errors into a logged line and exit status 1 ("error: ...")."""
    try:
        yield
    except error_types as e:
        logging.error("%s", e)
        raise SystemExit(f"error: {e}") from None


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
