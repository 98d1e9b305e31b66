"""Guardrail faults (issue 8, item 12): a trip after the reply finished is reported without an error, and a
follow-up that trips the guardrail again cannot loop without limit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import voicelab
from voicelab import events as ev
from voicelab.agents import Agent, GuardrailTripped, output_guardrail
from voicelab.agents.runtime import MAX_GUARDRAIL_FOLLOW_UPS
from voicelab.server.brains import EchoBrain


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Any]:
    with voicelab.serve(brain=EchoBrain(), pace="fast") as server:
        yield server


@output_guardrail
def no_banana(context: object, agent: object, text: str) -> bool:
    return "banana" in text.lower()


async def _run(session: voicelab.Session, text: str, seconds: float = 20.0) -> list[ev.AppEvent]:
    """Send `text`, then collect events until the session has been quiet (no response, runtime idle)."""
    got: list[ev.AppEvent] = []

    async def run() -> None:
        await session.send_text(text)
        while True:
            try:
                event = await asyncio.wait_for(session.__anext__(), 0.5)
            except (asyncio.TimeoutError, TimeoutError):
                if not session.responding and not session.runtime.running:
                    return
                continue
            got.append(event)

    await asyncio.wait_for(run(), seconds)
    return got


@pytest.mark.parametrize("modality", ["text", "audio"])
async def test_a_trip_after_the_reply_finished_is_no_error(echo_server: Any, modality: str) -> None:
    agent = Agent(
        name="fruit",
        output_guardrails=[no_banana],
        guardrail_follow_up="Please answer without that word.",
        output_modalities=[modality],
    )
    async with voicelab.connect(agent, url=echo_server.url, record_dir=False) as session:
        got = await _run(session, "I like banana bread")
    errors = [e for e in got if isinstance(e, ev.Error)]
    assert errors == [], errors
    trips = [e for e in got if isinstance(e, GuardrailTripped)]
    assert len(trips) == 1 and trips[0].follow_up == "Please answer without that word."
    done = [e for e in got if isinstance(e, ev.ResponseDone)]
    assert done[0].status in ("completed", "cancelled")
    if trips[0].response_finished:  # the whole reply had arrived: nothing was cancelled
        assert done[0].status == "completed"


async def test_a_follow_up_that_trips_again_is_capped_and_says_so(echo_server: Any) -> None:
    # the echo brain repeats the follow-up, which names the guardrail's word: without a cap this never ends
    agent = Agent(
        name="fruit",
        output_guardrails=[no_banana],
        guardrail_follow_up="You said banana.",
        output_modalities=["text"],
    )
    async with voicelab.connect(agent, url=echo_server.url, record_dir=False) as session:
        got = await _run(session, "banana")
    trips = [e for e in got if isinstance(e, GuardrailTripped)]
    sent = [t for t in trips if t.follow_up]
    assert len(sent) == MAX_GUARDRAIL_FOLLOW_UPS
    assert len(trips) == MAX_GUARDRAIL_FOLLOW_UPS + 1
    last = trips[-1]
    assert last.follow_up is None and last.note is not None and "follow-up" in last.note
    assert not [e for e in got if isinstance(e, ev.Error)]


async def test_the_cap_counts_follow_ups_in_a_row_not_per_session(echo_server: Any) -> None:
    agent = Agent(
        name="fruit",
        output_guardrails=[no_banana],
        guardrail_follow_up="You said banana.",
        output_modalities=["text"],
    )
    async with voicelab.connect(agent, url=echo_server.url, record_dir=False) as session:
        first = await _run(session, "banana")
        second = await _run(session, "banana again")  # a new user turn: follow-ups are allowed again
    for got in (first, second):
        sent = [e for e in got if isinstance(e, GuardrailTripped) and e.follow_up]
        assert len(sent) == MAX_GUARDRAIL_FOLLOW_UPS


def test_every_tool_call_has_a_tool_start_handoffs_included(agents_demo_recording: Any) -> None:
    from voicelab.recording import load_recording

    app = [e for e in load_recording(agents_demo_recording).events if e["dir"] == "app"]
    calls = [e["event"] for e in app if e["type"] == "tool_call"]
    starts = {e["event"]["call_id"]: e["t_ms"] for e in app if e["type"] == "tool_start"}
    assert any(c["name"].startswith("transfer_to_") for c in calls)
    for call in calls:
        assert call["call_id"] in starts, call["name"]
    ends = {e["event"]["call_id"]: e["t_ms"] for e in app if e["type"] == "tool_call"}
    assert all(starts[c] <= ends[c] for c in ends)
