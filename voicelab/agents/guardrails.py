"""Output guardrails: checks over the assistant's transcript as it streams, and the debounce bookkeeping."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from voicelab.checks import checked, takes_args, text
from voicelab.errors import ConfigError

DEFAULT_DEBOUNCE_TEXT_LENGTH = 100


def default_follow_up(names: list[str]) -> str:
    """The user message sent after a trip so the model answers again (the Agents SDK's wording)."""
    return f"guardrail triggered: {', '.join(names)}"


@dataclass(frozen=True)
class GuardrailResult:
    tripwire_triggered: bool
    info: Any = None


@dataclass(frozen=True)
class OutputGuardrail:
    """fn(context, agent, text) -> GuardrailResult | bool, sync or async."""

    function: Callable[..., Any]
    name: str = ""

    def __post_init__(self) -> None:
        takes_args(
            self.function,
            3,
            "an output guardrail",
            example="def no_refunds(context, agent, text: str) -> bool",
        )
        text(self.name, "name", empty=True, where="output_guardrail")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", "guardrail"))

    async def run(self, context: Any, agent: Any, text: str) -> GuardrailResult:
        result = self.function(context, agent, text)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, GuardrailResult):
            return result
        if isinstance(result, bool):
            return GuardrailResult(result)
        triggered = getattr(result, "tripwire_triggered", None)  # an Agents SDK GuardrailFunctionOutput
        if isinstance(triggered, bool):
            return GuardrailResult(triggered, getattr(result, "output_info", None))
        raise TypeError(
            f"guardrail {self.name!r} returned {type(result).__name__}; return a GuardrailResult or a bool"
        )


@overload
def output_guardrail(function: Callable[..., Any], /) -> OutputGuardrail: ...


@overload
def output_guardrail(*, name: str | None = None) -> Callable[[Callable[..., Any]], OutputGuardrail]: ...


@checked
def output_guardrail(
    function: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> OutputGuardrail | Callable[[Callable[..., Any]], OutputGuardrail]:
    """Decorator: `@output_guardrail` or `@output_guardrail(name="no_refunds")`."""
    text(name, "name", none=True, example="no_refunds", where="output_guardrail")
    if function is not None:
        return OutputGuardrail(function, name or "")

    def decorate(inner: Callable[..., Any]) -> OutputGuardrail:
        return OutputGuardrail(inner, name or "")

    return decorate


@dataclass
class _ItemText:
    response_id: str | None
    text: str = ""
    runs: int = 0
    checked_length: int = 0


@dataclass
class TranscriptWatch:
    """Collects assistant text per item and says when the guardrails should look at it.

    With `debounce_text_length` N > 0 a check is due each time the text crosses N, 2N, 3N... characters, and
    once more at the end of the item for text not yet checked; with -1 only at the end.
    """

    debounce_text_length: int = DEFAULT_DEBOUNCE_TEXT_LENGTH
    _items: dict[str, _ItemText] = field(default_factory=dict)
    tripped_responses: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.debounce_text_length == 0 or self.debounce_text_length < -1:
            raise ConfigError(
                "debounce_text_length must be a positive number of characters, or -1 for end-only"
            )

    def add(self, item_id: str, delta: str, response_id: str | None = None) -> str | None:
        """Add a delta; return the text so far when a check is due."""
        entry = self._items.setdefault(item_id, _ItemText(response_id))
        if response_id and not entry.response_id:
            entry.response_id = response_id
        entry.text += delta
        n = self.debounce_text_length
        if n < 0 or len(entry.text) < (entry.runs + 1) * n:
            return None
        entry.runs = max(entry.runs + 1, len(entry.text) // n)
        entry.checked_length = len(entry.text)
        return entry.text

    def finish(self, item_id: str) -> str | None:
        """The item ended: return its full text if part of it was never checked."""
        entry = self._items.get(item_id)
        if entry is None or len(entry.text) == entry.checked_length or not entry.text:
            return None
        entry.checked_length = len(entry.text)
        return entry.text

    def text(self, item_id: str) -> str:
        entry = self._items.get(item_id)
        return entry.text if entry else ""

    def response_of(self, item_id: str) -> str | None:
        entry = self._items.get(item_id)
        return entry.response_id if entry else None

    def items(self) -> list[str]:
        return list(self._items)


__all__ = [
    "DEFAULT_DEBOUNCE_TEXT_LENGTH",
    "GuardrailResult",
    "OutputGuardrail",
    "TranscriptWatch",
    "default_follow_up",
    "output_guardrail",
]
