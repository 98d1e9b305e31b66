"""Shared checks for the public API's arguments (issue 8): one rule per kind of value, one message style.

Every check raises `ConfigError` (or `ArgumentError` for a call that does not fit the signature) with one line
that names the argument, what was given, and what to pass instead. Use them where a definition is made, so a
mistake fails there and not at connect or run time:

- `checked` / `checked_class`: a misspelt keyword (with the closest name), a missing or extra argument;
- `number`, `whole`: bools, strings, NaN, infinities and values out of range;
- `flag`, `text`, `one_of`: True/False, non-empty strings, a value from a fixed set;
- `path_arg`, `input_file`, `input_folder`, `output_file`, `output_folder`: paths of the wrong type, files
  that are folders, folders that are files (or inside one);
- `takes_args`: a callback that cannot be called with the arguments voicelab passes;
- `sequence_of`: a list given as one item, or items of the wrong kind;
- `api_key_text`: an API key no Authorization header can carry (the key is never shown).
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import math
import os
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any, TypeVar

from voicelab.errors import ArgumentError, ConfigError, UnknownNameError, VoicelabError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", bound=type)

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_MAX_LIST = 300  # characters of a parameter list shown in a message


# -- calls ------------------------------------------------------------------------------------------------
def binding_problem(
    name: str, sig: inspect.Signature, args: Sequence[Any], kwargs: dict[str, Any]
) -> str | None:
    """The one-line reason `name(*args, **kwargs)` does not fit `sig`, or None when it does."""
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        reason = str(exc)
    else:
        return None
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    named = [p.name for p in params if p.kind in _NAMED]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    shown = ", ".join(named)
    if len(shown) > _MAX_LIST:
        shown = shown[:_MAX_LIST].rsplit(", ", 1)[0] + ", ..."
    if not takes_any:
        for key in kwargs:
            if key not in named:
                close = [n for n in named if key.lower() in n] or difflib.get_close_matches(key, named, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                return f"{name}() has no argument {key!r}; {hint}it takes: {shown or 'no arguments'}."
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty and p.kind in (*_NAMED, inspect.Parameter.POSITIONAL_ONLY)
    ]
    need = f"required: {', '.join(required)}; " if required else ""
    return f"{name}(): {reason}; {need}it takes: {shown or 'no arguments'} (see help({name}))."


def unknown_keywords(given: Iterable[str], allowed: Iterable[str], where: str) -> None:
    """ArgumentError for the first key of `given` not in `allowed`, with the closest allowed name."""
    names = list(allowed)
    for key in given:
        if key not in names:
            close = [n for n in names if key.lower() in n] or difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ArgumentError(f"{where} has no argument {key!r}; {hint}it takes: {', '.join(names)}.")


def unknown_fields(given: Iterable[str], fields: Sequence[str], subject: str) -> None:
    """ConfigError for the first key of `given` that is none of `fields` (a dataclass's), with the closest
    field; `subject` starts the message, e.g. "SessionConfig.replace(): SessionConfig"."""
    for key in given:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{subject} has no field {key!r}; {hint}fields: {', '.join(fields)}.")


def unknown_name(owner: str, name: str, names: Iterable[str]) -> UnknownNameError:
    """The UnknownNameError for `owner.name`, naming the closest of `names` (raise it from __getattr__)."""
    public = sorted(n for n in names if not n.startswith("_"))
    close = difflib.get_close_matches(name, public, n=1)
    hint = f"did you mean {owner}.{close[0]}? " if close else ""
    return UnknownNameError(f"{owner} has no attribute {name!r}; {hint}it has: {', '.join(public)}.")


def checked(func: F, *, name: str | None = None) -> F:
    """Wrap `func` so that a call that does not fit its signature raises ArgumentError (a ConfigError and a
    TypeError) naming the closest keyword, instead of Python's bare TypeError. No cost on good calls."""
    sig = inspect.signature(func)
    shown = name or func.__qualname__.replace(".__init__", "")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TypeError as exc:
            problem = binding_problem(shown, sig, args, kwargs)
            if problem is None:
                raise
            raise ArgumentError(problem) from exc

    if inspect.iscoroutinefunction(func):  # the call still binds at once and returns the coroutine
        mark = getattr(inspect, "markcoroutinefunction", None)
        if mark is not None:
            mark(wrapper)
        else:  # Python < 3.12
            wrapper._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def checked_class(cls: T) -> T:
    """`checked` for a class's constructor: `SessionConfig(vioce="ash")` says "did you mean 'voice'?"."""
    cls.__init__ = checked(cls.__init__, name=cls.__name__)  # type: ignore[misc]
    return cls


# -- numbers, flags, text ----------------------------------------------------------------------------------
def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range_text(lo: float | None, hi: float | None, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"from {_num(lo)} to {_num(hi)}" if not lo_open else f"above {_num(lo)} and at most {_num(hi)}"
    if lo is not None:
        return f"> {_num(lo)}" if lo_open else f">= {_num(lo)}"
    if hi is not None:
        return f"<= {_num(hi)}"
    return ""


def number(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    integer: bool = False,
    unit: str = "",
    example: Any = None,
    where: str = "",
    error: type[VoicelabError] = ConfigError,
) -> Any:
    """`value` as given if it is a finite real number (not a bool, not a string) in range, else ConfigError.
    `integer=True` also wants a whole number (3.0 passes and is returned as 3)."""
    kind = "a whole number" if integer else "a number"
    if unit:
        kind += f" of {unit}"
    span = _range_text(lo, hi, lo_open)
    want = f"{kind} {span}".strip()
    eg = f", e.g. {name}={example!r}" if example is not None else ""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise error(f"{prefix}{name}={value!r} must be {want}{eg}.")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise error(f"{prefix}{name}={value!r} must be {want} (not NaN or infinite){eg}.")
    if integer and as_float != int(as_float):
        raise error(f"{prefix}{name}={value!r} must be {want}{eg}.")
    if (lo is not None and (as_float < lo or (lo_open and as_float == lo))) or (
        hi is not None and as_float > hi
    ):
        raise error(f"{prefix}{name}={value!r} is out of range: it must be {want}{eg}.")
    return int(as_float) if integer else value


def whole(value: Any, name: str, **kwargs: Any) -> int:
    """`number(..., integer=True)`: a whole number in range."""
    return int(number(value, name, integer=True, **kwargs))


def flag(value: Any, name: str, *, where: str = "") -> bool:
    """True or False (not 1, "yes" or None)."""
    if not isinstance(value, bool):
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{name}={value!r} must be True or False.")
    return value


def text(
    value: Any,
    name: str,
    *,
    empty: bool = False,
    none: bool = False,
    max_len: int | None = None,
    example: str | None = None,
    where: str = "",
) -> Any:
    """A str (non-empty unless `empty`; None only if `none`), at most `max_len` characters."""
    prefix = f"{where}: " if where else ""
    eg = f", e.g. {name}={example!r}" if example is not None else ""
    if value is None and none:
        return None
    if not isinstance(value, str):
        extra = " or None" if none else ""
        raise ConfigError(f"{prefix}{name} must be a str{extra}, got {type(value).__name__}{eg}.")
    if not empty and not value.strip():
        raise ConfigError(f"{prefix}{name} is empty; give it a value{eg}.")
    if max_len is not None and len(value) > max_len:
        raise ConfigError(f"{prefix}{name} is {len(value)} characters long; the most is {max_len}{eg}.")
    return value


def one_of(value: Any, name: str, choices: Iterable[Any], *, where: str = "") -> Any:
    """`value` if it is one of `choices`, else ConfigError listing them (and the closest one)."""
    options = list(choices)
    try:
        found = value in options
    except TypeError:  # unhashable vs. a set-like container
        found = False
    if found and not isinstance(value, bool):
        return value
    prefix = f"{where}: " if where else ""
    close = (
        difflib.get_close_matches(value, [o for o in options if isinstance(o, str)], n=1)
        if isinstance(value, str)
        else []
    )
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = ", ".join(repr(o) for o in options)
    raise ConfigError(f"{prefix}{name}={value!r} is not valid; {hint}use one of {listed}.")


# -- paths -------------------------------------------------------------------------------------------------
def path_arg(
    value: Any,
    name: str,
    *,
    example: str = "'folder/file'",
    where: str = "",
    error: type[VoicelabError] = ConfigError,
) -> Path:
    """A `pathlib.Path` from a str or os.PathLike (not a number, bytes or an empty string)."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise error(
            f"{prefix}{name} must be a path (a str or pathlib.Path), got {type(value).__name__}; "
            f"e.g. {name}={example}."
        )
    if not str(os.fspath(value)).strip():
        raise error(f"{prefix}{name} is an empty path; give a path, e.g. {name}={example}.")
    return Path(value)


def _file_above(path: Path) -> Path | None:
    """The nearest existing parent of `path` (or `path` itself) that is a file, if any."""
    for folder in (path, *path.parents):
        if folder.exists():
            return None if folder.is_dir() else folder
    return None


def input_file(
    value: Any, name: str, *, example: str = "'file'", what: str = "file", where: str = ""
) -> Path:
    """An existing file (not a folder)."""
    return _existing(value, name, example, what, where, folder=False)


def input_folder(
    value: Any, name: str, *, example: str = "'folder'", what: str = "folder", where: str = ""
) -> Path:
    """An existing folder (not a file)."""
    return _existing(value, name, example, what, where, folder=True)


def _existing(value: Any, name: str, example: str, what: str, where: str, *, folder: bool) -> Path:
    path = path_arg(value, name, example=example, where=where)
    prefix = f"{where}: " if where else ""
    if not path.exists():
        raise ConfigError(f"{prefix}{name}: {what} {str(path)!r} does not exist; check the path.")
    if path.is_dir() != folder:
        found, kind = ("file", "folder") if folder else ("folder", "file")
        raise ConfigError(
            f"{prefix}{name}: {str(path)!r} is a {found}, not a {what}; pass the {kind}'s path."
        )
    return path


def output_file(value: Any, name: str, *, example: str = "'out.json'", where: str = "") -> Path:
    """A path a file can be written to: not a folder, and not inside a file."""
    path = path_arg(value, name, example=example, where=where)
    prefix = f"{where}: " if where else ""
    if path.is_dir():
        raise ConfigError(
            f"{prefix}{name}: {str(path)!r} is a folder; pass a file path such as {str(path / 'file')!r}."
        )
    blocker = _file_above(path.parent)
    if blocker is not None:
        raise ConfigError(
            f"{prefix}{name}: cannot write {str(path)!r}: {str(blocker)!r} is a file, not a folder; pass a "
            "path in a folder."
        )
    return path


def output_folder(value: Any, name: str, *, example: str = "'folder'", where: str = "") -> Path:
    """A path a folder can be made at (or already is): not a file, and not inside one."""
    path = path_arg(value, name, example=example, where=where)
    prefix = f"{where}: " if where else ""
    blocker = _file_above(path)
    if blocker is not None:
        what = "is a file" if blocker == path else f"is inside {str(blocker)!r}, which is a file"
        raise ConfigError(f"{prefix}{name}: {str(path)!r} {what}; pass a folder path.")
    return path


# -- callables and collections -----------------------------------------------------------------------------
def takes_args(func: Any, count: int, name: str, *, example: str, where: str = "") -> None:
    """ConfigError unless `func` is a callable (not a class) that can be called with `count` positional
    arguments. Callables without an inspectable signature (some builtins) pass."""
    prefix = f"{where}: " if where else ""
    if isinstance(func, type):
        raise ConfigError(
            f"{prefix}{name} needs a function such as {example}, got the class {func.__name__}."
        )
    if not callable(func):
        raise ConfigError(f"{prefix}{name} needs a function such as {example}, got {type(func).__name__}.")
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*range(count))
    except TypeError:
        shown = getattr(func, "__qualname__", type(func).__name__)
        raise ConfigError(
            f"{prefix}{name} {shown}{sig} cannot be called with {count} argument(s); define it as {example}."
        ) from None


def sequence_of(
    value: Any, name: str, kinds: type | tuple[type, ...], *, what: str, where: str = "", empty: bool = True
) -> list[Any]:
    """A list of `kinds` from a list or tuple (a single item is an error naming the fix: wrap it in [...])."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, kinds):
        raise ConfigError(f"{prefix}{name} must be a list of {what}; wrap the one you have in [...].")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{prefix}{name} must be a list of {what}, got {type(value).__name__}.")
    for i, item in enumerate(value):
        if not isinstance(item, kinds):
            raise ConfigError(f"{prefix}{name}[{i}] must be {what}, got {type(item).__name__}.")
    if not empty and not value:
        raise ConfigError(f"{prefix}{name} is empty; give at least one of {what}.")
    return list(value)


__all__ = [
    "binding_problem",
    "checked",
    "checked_class",
    "flag",
    "input_file",
    "input_folder",
    "number",
    "one_of",
    "output_file",
    "output_folder",
    "path_arg",
    "sequence_of",
    "takes_args",
    "text",
    "unknown_keywords",
    "unknown_name",
    "whole",
]


# -- secrets ----------------------------------------------------------------------------------------------
def api_key_text(key: str, name: str, *, fix: str) -> None:
    """ConfigError for a key no server can accept in an Authorization header: a non-ASCII character, a
    space, tab or line break. `name` says where the key came from (`api_key`, `OPENAI_API_KEY`); the key
    itself is never shown."""
    if not key.isascii():
        raise ConfigError(
            f"{name} has a non-ASCII character (API keys are ASCII: a smart quote or an accent crept in?); "
            "copy the key again from where it is kept."
        )
    if not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(f"{name} has a space, tab or line break in it (a copy-paste slip?); {fix}.")
