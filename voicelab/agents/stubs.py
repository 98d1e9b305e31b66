"""Tool stubs, as in the Realtime Playground: answer tool calls without (or instead of) running the tool.

Kinds: `fixed` output, `template` filled from the arguments, a Python `callable`, a `sequence` (one output per
call, then repeat the last or fail), `recorded` outputs from a recording's tool_call events, and `manual`:
the call waits until code (or the notebook) answers it through `stubs.answer(call_id, output)`.

Saving: `stubs.save(path)` writes JSON. Answers typed for manual stubs during a session are remembered, so a
saved file turns each answered manual stub into a fixture: one answer becomes a `fixed` stub, several become a
`sequence` (in the order given). A manual stub never answered stays `manual`. Callable stubs cannot be saved.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import json
import string
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from voicelab.agents.tools import _TOOL_NAME, output_to_string
from voicelab.checks import (
    checked,
    checked_class,
    input_file,
    number,
    one_of,
    output_file,
    path_arg,
    sequence_of,
    text,
)
from voicelab.errors import ConfigError

StubKind = Literal["fixed", "template", "callable", "sequence", "recorded", "manual"]
STUB_KINDS: tuple[str, ...] = ("fixed", "template", "callable", "sequence", "recorded", "manual")
MAX_WAIT_S = 86_400  # a day: a manual answer that takes longer is a forgotten call


class StubError(Exception):
    """A stub could not produce an output for a call (sequence exhausted, template field missing, timeout)."""


@dataclass
class Stub:
    """One tool's stub. `outputs` holds the fixed output, the template, or the sequence."""

    kind: StubKind
    outputs: list[str] = field(default_factory=list)
    func: Callable[..., Any] | None = None
    then: Literal["last", "error"] = "last"
    timeout: float | None = None
    default: str | None = None
    calls: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.kind == "callable":
            raise ConfigError(
                "a callable stub cannot be saved to JSON; replace it with a fixed or template stub first"
            )
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("fixed", "template"):
            data["output"] = self.outputs[0]
        elif self.kind in ("sequence", "recorded"):
            data["outputs"] = list(self.outputs)
            data["then"] = self.then
        else:
            data["timeout"] = self.timeout
            data["default"] = self.default
        return data


@dataclass
class PendingCall:
    """A tool call waiting for a manual answer."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    created: float
    _stubs: Stubs = field(repr=False, compare=False)

    @checked
    def answer(self, output: Any) -> None:
        self._stubs.answer(self.call_id, output)


@checked_class
class Stubs:
    """Stubbed answers per tool name. Stubs override real implementations while set."""

    def __init__(self) -> None:
        self._stubs: dict[str, Stub] = {}
        self._pending: dict[str, tuple[PendingCall, asyncio.Future[str]]] = {}
        self._manual_answers: dict[str, list[str]] = {}

    # -- defining -----------------------------------------------------------------------------------------
    @checked
    def fixed(self, name: str, output: Any) -> Stubs:
        _check_stub_name(name)
        self._stubs[name] = Stub("fixed", [_stub_output(name, output)])
        return self

    @checked
    def template(self, name: str, template: str) -> Stubs:
        """Output `template` with `{argument}` fields filled from the call's arguments."""
        _check_stub_name(name)
        if not isinstance(template, str):
            raise ConfigError(
                f"stub template for {name!r} must be a str such as 'Order {{order_number}} shipped', got "
                f"{type(template).__name__}"
            )
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ConfigError(
                f"stub template for {name!r} is malformed ({exc}); write {{{{ and }}}} for a literal brace, "
                "{argument} for an argument"
            ) from None
        if any(f == "" or f.isdigit() for f in fields):
            raise ConfigError(
                f"stub template for {name!r} has a positional field; name the argument, e.g. {{order_number}}"
            )
        for _, field_name, spec, conversion in string.Formatter().parse(template):
            if spec and not _usable_spec(spec):
                raise ConfigError(
                    f"stub template for {name!r} has the format spec {spec!r} in {{{field_name}:{spec}}}, "
                    "which fits neither text nor numbers; drop it or use one such as :>10 or :.2f"
                )
            if conversion not in (None, "r", "s", "a"):
                raise ConfigError(
                    f"stub template for {name!r} has the conversion !{conversion} in "
                    f"{{{field_name}!{conversion}}}; use !r, !s or !a, or none"
                )
            if field_name and "." in field_name:
                raise ConfigError(
                    f"stub template for {name!r} reads an attribute in {{{field_name}}}; arguments are JSON "
                    "values: name the argument, e.g. {order_number} (or {items[0]} for a list item)"
                )
        self._stubs[name] = Stub("template", [template])
        return self

    @checked
    def callable(self, name: str, func: Callable[..., Any]) -> Stubs:
        """Output func(**arguments) (sync or async), turned into a string like a tool's output."""
        _check_stub_name(name)
        if not callable(func):
            raise ConfigError(f"stub for {name!r} needs a callable, got {type(func).__name__}")
        self._stubs[name] = Stub("callable", func=func)
        return self

    @checked
    def sequence(
        self, name: str, outputs: Sequence[Any], *, then: Literal["last", "error"] = "last"
    ) -> Stubs:
        """One output per call in order; then repeat the last one (then="last") or fail (then="error")."""
        _check_stub_name(name)
        if isinstance(outputs, (str, bytes, Mapping)) or not isinstance(outputs, Sequence):
            raise ConfigError(
                f"stub sequence for {name!r} needs a list of outputs, e.g. ['first', 'second'], got "
                f"{type(outputs).__name__}"
            )
        if not outputs:
            raise ConfigError(f"stub sequence for {name!r} is empty; give at least one output")
        if then not in ("last", "error"):
            raise ConfigError(f"stub sequence then={then!r} is invalid; use 'last' or 'error'")
        self._stubs[name] = Stub("sequence", [_stub_output(name, o) for o in outputs], then=then)
        return self

    @checked
    def manual(self, name: str, *, timeout: float | None = None, default: Any = None) -> Stubs:
        """Calls wait for `answer(call_id, output)`; after `timeout` s, `default` answers (or it fails)."""
        _check_stub_name(name)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_WAIT_S
        ):
            raise ConfigError(
                f"manual stub {name!r}: timeout={timeout!r} must be seconds > 0 and at most {MAX_WAIT_S} (a "
                "day), or None to wait forever"
            )
        self._stubs[name] = Stub(
            "manual", timeout=timeout, default=None if default is None else _stub_output(name, default)
        )
        return self

    @checked
    def recorded(
        self, recording: Any, names: Iterable[str] | None = None, *, then: Literal["last", "error"] = "last"
    ) -> Stubs:
        """Replay the outputs of a recording's tool_call events (a folder, or an object with `.events`)."""
        if names is not None:
            names = sequence_of(names, "names", str, what="tool names (str)", where="Stubs.recorded")
        one_of(then, "then", ("last", "error"), where="Stubs.recorded")
        wanted = set(names) if names is not None else None
        outputs: dict[str, list[str]] = {}
        for event in _recording_events(recording):
            if event.get("dir") != "app" or event.get("type") != "tool_call":
                continue
            body = event.get("event", {})
            name, output = body.get("name"), body.get("output")
            if not name or output is None or body.get("error") or (wanted is not None and name not in wanted):
                continue
            outputs.setdefault(name, []).append(output)
        missing = sorted((wanted or set()) - set(outputs))
        if missing:
            raise ConfigError(
                f"the recording has no answered tool_call for {missing}; record a session that calls them"
            )
        for name, values in outputs.items():
            self._stubs[name] = Stub("recorded", values, then=then)
        return self

    @checked
    def remove(self, name: str) -> None:
        """Remove the stub of tool `name` (ConfigError, with the closest name, if there is none)."""
        if name not in self._stubs:
            close = difflib.get_close_matches(str(name), list(self._stubs), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"there is no stub {name!r} to remove; {hint}stubs: {', '.join(self._stubs) or 'none'}"
            )
        del self._stubs[name]

    def clear(self) -> None:
        self._stubs.clear()

    def __contains__(self, name: object) -> bool:
        return name in self._stubs

    def __len__(self) -> int:
        return len(self._stubs)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{name}={stub.kind}" for name, stub in self._stubs.items())
        return f"Stubs({kinds})"

    def kind(self, name: str) -> StubKind | None:
        stub = self._stubs.get(name)
        return stub.kind if stub else None

    @property
    def names(self) -> list[str]:
        return list(self._stubs)

    # -- answering ----------------------------------------------------------------------------------------
    async def resolve(self, call_id: str, name: str, arguments: Mapping[str, Any]) -> str:
        """The stub's output for one call. Raise StubError when the stub cannot answer it."""
        stub = self._stubs.get(name)
        if stub is None:
            raise StubError(f"no stub is set for {name!r}")
        index = stub.calls
        stub.calls += 1
        if stub.kind == "fixed":
            return stub.outputs[0]
        if stub.kind == "template":
            try:
                return stub.outputs[0].format_map(dict(arguments))
            except (KeyError, IndexError, AttributeError) as exc:
                raise StubError(
                    f"stub template for {name!r} needs argument {exc} which the call did not give"
                ) from None
        if stub.kind == "callable":
            assert stub.func is not None
            result = stub.func(**arguments)
            if inspect.isawaitable(result):
                result = await result
            return output_to_string(result)
        if stub.kind in ("sequence", "recorded"):
            if index < len(stub.outputs):
                return stub.outputs[index]
            if stub.then == "error":
                raise StubError(
                    f"stub sequence for {name!r} has only {len(stub.outputs)} outputs (call {index + 1})"
                )
            return stub.outputs[-1]
        return await self._wait_manual(call_id, name, dict(arguments), stub)

    async def _wait_manual(self, call_id: str, name: str, arguments: dict[str, Any], stub: Stub) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        pending = PendingCall(call_id, name, arguments, time.time(), self)
        self._pending[call_id] = (pending, future)
        try:
            if stub.timeout is None:
                return await future
            try:
                return await asyncio.wait_for(asyncio.shield(future), stub.timeout)
            except TimeoutError:
                if stub.default is not None:
                    return stub.default
                raise StubError(f"no manual answer for {name!r} within {stub.timeout} s") from None
        finally:
            self._pending.pop(call_id, None)

    def pending(self) -> list[PendingCall]:
        """Calls waiting for a manual answer, oldest first."""
        return [pending for pending, _ in self._pending.values()]

    def answer(self, call_id: str, output: Any) -> None:
        """Answer a waiting manual call. The answer is remembered for `save()`."""
        entry = self._pending.pop(call_id, None)  # one answer per call: a second one is an error
        if entry is None:
            waiting = ", ".join(self._pending) or "none"
            raise ConfigError(
                f"no tool call {call_id!r} is waiting for an answer (waiting: {waiting}); "
                "it was answered, timed out or the session closed. List open calls with stubs.pending()"
            )
        pending, future = entry
        text = output_to_string(output)
        if not future.done():
            future.get_loop().call_soon_threadsafe(_set_result, future, text)
        self._manual_answers.setdefault(pending.name, []).append(text)

    @checked
    async def wait_pending(self, name: str | None = None, timeout: float = 10.0) -> PendingCall:
        """Wait until a manual call (of tool `name`, if given) is pending; for code that answers calls."""
        text(name, "name", none=True, where="Stubs.wait_pending")
        number(timeout, "timeout", lo=0, lo_open=True, hi=MAX_WAIT_S, unit="seconds", example=10)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for pending in self.pending():
                if name is None or pending.name == name:
                    return pending
            if loop.time() >= deadline:
                raise TimeoutError(
                    f"no manual call{f' of {name!r}' if name else ''} was pending within {timeout} s"
                )
            await asyncio.sleep(0.005)

    # -- files --------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, stub in self._stubs.items():
            answers = self._manual_answers.get(name)
            if stub.kind == "manual" and answers:
                data[name] = (
                    {"kind": "fixed", "output": answers[0]}
                    if len(answers) == 1
                    else {"kind": "sequence", "outputs": list(answers), "then": "last"}
                )
            else:
                data[name] = stub.to_json()
        return {"voicelab_stubs": 1, "stubs": data}

    @checked
    def save(self, path: str | Path) -> Path:
        target = output_file(path, "path", example="'stubs.json'", where="Stubs.save")
        target.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return target

    @classmethod
    @checked
    def from_json(cls, data: Mapping[str, Any]) -> Stubs:
        if not isinstance(data, Mapping) or not isinstance(data.get("stubs"), Mapping):
            raise ConfigError(
                'a stubs file must be a JSON object {"voicelab_stubs": 1, "stubs": {name: {...}}}'
            )
        stubs = cls()
        for name, spec in data["stubs"].items():
            kind = spec.get("kind") if isinstance(spec, Mapping) else None
            try:
                if kind in ("fixed", "template"):
                    getattr(stubs, kind)(name, spec["output"])
                elif kind in ("sequence", "recorded"):
                    stubs.sequence(name, spec["outputs"], then=spec.get("then", "last"))
                    stubs._stubs[name].kind = kind
                elif kind == "manual":
                    stubs.manual(name, timeout=spec.get("timeout"), default=spec.get("default"))
                else:
                    raise ConfigError(
                        f"stub {name!r} has kind {kind!r}; use one of {', '.join(STUB_KINDS)} "
                        "(callable stubs are not saved)"
                    )
            except KeyError as exc:
                raise ConfigError(
                    f"stub {name!r} ({kind}) is missing field {exc}; see Stubs.save() output"
                ) from None
        return stubs

    @classmethod
    @checked
    def load(cls, path: str | Path) -> Stubs:
        file = input_file(path, "path", example="'stubs.json'", what="stubs file", where="Stubs.load")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"stubs file {path} is not text; pass a file written by Stubs.save()") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"stubs file {path} is not valid JSON ({exc}); write it with Stubs.save()"
            ) from None
        return cls.from_json(data)


def _usable_spec(spec: str) -> bool:
    """Whether a format spec formats a str or a number (arguments are JSON values)."""
    if "{" in spec:  # a nested field, e.g. {x:{width}}: known only when the call comes
        return True
    for sample in ("text", 1.5, 2):
        try:
            format(sample, spec)
        except (ValueError, TypeError):
            continue
        return True
    return False


def _stub_output(name: str, value: Any) -> str:
    """A stub's output as the string the model gets: a str, a pydantic model, or a JSON value (no NaN, no
    objects that would only show as their repr)."""
    if isinstance(value, (str, BaseModel)):
        return output_to_string(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"stub output for {name!r} is not a str or a JSON value ({exc}); pass text, or a dict/list of "
            "str, numbers (not NaN), bools and None"
        ) from None
    return output_to_string(value)


def _check_stub_name(name: Any) -> None:
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ConfigError(
            f"a stub is named after its tool: pass the tool's name (1-64 letters, digits, '_' or '-'), "
            f"got {name!r}"
        )


def _set_result(future: asyncio.Future[str], value: str) -> None:
    if not future.done():
        future.set_result(value)


def _recording_events(recording: Any) -> list[dict[str, Any]]:
    events = getattr(recording, "events", None)
    if events is not None:
        return list(events)
    path = path_arg(recording, "recording", example="'recordings/<time>'", where="Stubs.recorded")
    file = path / "events.jsonl" if path.is_dir() else path
    if not file.is_file() or file.suffix != ".jsonl":
        raise ConfigError(f"no events.jsonl at {path}; pass a recording folder or a loaded Recording")
    rows = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a half-written last line of a killed process
    return rows


__all__ = ["STUB_KINDS", "PendingCall", "Stub", "StubError", "StubKind", "Stubs"]
