"""What every command shares: its start (no stray arguments, INFO logging without library noise,
the faster CPU lowering of JAX's random bits), how it reports the errors a user fixes (a config, a
path): one line, no stack trace, and flags generated from an options dataclass."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import textwrap
import tokenize
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
    cls: type,
    extra_help: Mapping[str, str] | None = None,
    flag_values: flags.FlagValues = flags.FLAGS,
) -> dict[str, flags.FlagHolder]:
    """One flag per field of the dataclass `cls`, named as the field, defaulting to its default,
    typed by it: bool, int, float, str, and tuples as comma lists (`--report_ks=1,10`). Help text:
    the field's `metadata['help']`, else its comment in `cls`'s source (on its line, or the comment
    block above it), else `extra_help[name]`. {field name: flag holder}."""
    defaults = cls()
    comments = field_comments(cls)
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: infer from the defaults
        hints = {}
    holders = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        name, default = field.name, getattr(defaults, field.name)
        text = (
            field.metadata.get("help")
            or comments.get(name)
            or (extra_help or {}).get(name)
            or f"{cls.__name__}.{name}"
        )
        kw = {"flag_values": flag_values}
        if isinstance(default, bool):
            holders[name] = flags.DEFINE_bool(name, default, text, **kw)
        elif isinstance(default, int):
            holders[name] = flags.DEFINE_integer(name, default, text, **kw)
        elif isinstance(default, float):
            holders[name] = flags.DEFINE_float(name, default, text, **kw)
        elif isinstance(default, str):
            holders[name] = flags.DEFINE_string(name, default, text, **kw)
        elif isinstance(default, tuple):
            item = _item_type(hints.get(name), default)
            text += f" (comma list of {item.__name__})"
            holders[name] = flags.DEFINE_list(name, [str(v) for v in default], text, **kw)
        else:
            raise TypeError(f"{cls.__name__}.{name}: no flag type for {type(default).__name__}.")
    return holders


def dataclass_from_flags(
    cls: type, holders: Mapping[str, flags.FlagHolder], **overrides: Any
) -> Any:
    """`cls` built from the flags `define_dataclass_flags` made (comma lists back to tuples), with
    `overrides` in place of their flags."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {}
    defaults = cls()
    values = {}
    for name, holder in holders.items():
        value = holder.value
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            item = _item_type(hints.get(name), default)
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


def field_comments(cls: type) -> dict[str, str]:
    """{field: its comment in the class body}: the comment on the field's own line, else the
    block of comment lines right above it, which also covers the fields that follow it up to the
    next comment or blank line. {} where the source cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        body = ast.parse(source).body[0].body
    except (OSError, TypeError, SyntaxError, IndexError, AttributeError):
        return {}
    lines = source.splitlines()
    comments: dict[str, str] = {}
    block: str | None = None
    previous_end = None
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        start, end = node.lineno - 1, node.end_lineno - 1
        above = []
        row = start - 1
        while row >= 0 and lines[row].strip().startswith("#"):
            above.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        contiguous = previous_end is not None and row == previous_end and not above
        if above:
            block = " ".join(above)
        elif not contiguous:
            block = None
        own = _trailing_comment(lines[end])
        if own:
            comments[node.target.id] = own
        elif block:
            comments[node.target.id] = block
        if own:
            block = None
        previous_end = end
    return comments


def _trailing_comment(line: str) -> str | None:
    """The comment at the end of a line of code (None if none); '#' inside strings ignored."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError):
        return None
    for token in tokens:
        if token.type == tokenize.COMMENT:
            return token.string.lstrip("#").strip()
    return None
