"""Output guardrails: results, decorator forms, debounce bookkeeping."""

from __future__ import annotations

import asyncio

import pytest

from voicelab.agents.guardrails import GuardrailResult, OutputGuardrail, TranscriptWatch, output_guardrail
from voicelab.errors import ConfigError


@output_guardrail
def no_refunds(context: object, agent: object, text: str) -> bool:
    return "refund" in text.lower()


@output_guardrail(name="polite")
async def be_polite(context: object, agent: object, text: str) -> GuardrailResult:
    return GuardrailResult("stupid" in text, info={"checked": len(text)})


def test_results_from_bool_and_result() -> None:
    assert no_refunds.name == "no_refunds" and be_polite.name == "polite"
    assert asyncio.run(no_refunds.run(None, None, "A REFUND?")) == GuardrailResult(True)
    assert asyncio.run(no_refunds.run(None, None, "fine")) == GuardrailResult(False)
    assert asyncio.run(be_polite.run(None, None, "stupid")) == GuardrailResult(True, {"checked": 6})


def test_bad_return_and_bad_definition() -> None:
    weird = OutputGuardrail(lambda c, a, t: "yes", name="weird")
    with pytest.raises(TypeError, match="guardrail 'weird' returned str"):
        asyncio.run(weird.run(None, None, "x"))
    with pytest.raises(ConfigError, match="needs a function"):
        OutputGuardrail("nope")  # type: ignore[arg-type]


def test_watch_debounce_thresholds() -> None:
    watch = TranscriptWatch(10)
    assert watch.add("i1", "abcd", "r1") is None
    assert watch.add("i1", "efghij") == "abcdefghij"  # 10 characters: first check
    assert watch.add("i1", "k") is None
    assert watch.add("i1", "lmnopqrstuvwxyz0123") == "abcdefghijklmnopqrstuvwxyz0123"  # jumps 20 and 30
    assert watch.add("i1", "4") is None
    assert watch.finish("i1") == "abcdefghijklmnopqrstuvwxyz01234"  # the unchecked tail
    assert watch.finish("i1") is None
    assert watch.response_of("i1") == "r1"


def test_watch_end_only_and_short_items() -> None:
    watch = TranscriptWatch(-1)
    assert watch.add("i", "x" * 500) is None
    assert watch.finish("i") == "x" * 500
    short = TranscriptWatch()
    assert short.add("j", "hello") is None  # fewer than 100 characters
    assert short.finish("j") == "hello"
    assert short.finish("unknown") is None
    with pytest.raises(ConfigError, match="debounce_text_length"):
        TranscriptWatch(0)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: output_guardrail(lambda: False), ("cannot be called with 3", "(context, agent, text")),
        (lambda: output_guardrail(lambda a, b, c, d: False), ("cannot be called with 3",)),
        (lambda: output_guardrail(GuardrailResult), ("class GuardrailResult",)),
        (lambda: output_guardrail(name=5), ("name", "str")),
        (lambda: OutputGuardrail(lambda c, a, t: False, name=5), ("name", "str")),
    ],
)
def test_guardrails_that_cannot_be_called_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
    assert output_guardrail(lambda context, agent, text, *rest: False).name == "<lambda>"
