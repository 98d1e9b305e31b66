"""The chained architecture (voicelab.pipeline): the same agent and caller as a Realtime session, run as
speech-to-text -> text model -> text-to-speech against the embedded server; comparable tables, the latency
split, guardrails before speech, barge-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import voicelab
from voicelab import tables
from voicelab.agents import Agent, GuardrailResult, output_guardrail
from voicelab.caller import play_turns
from voicelab.demo import caller_turns, returns_desk_agent
from voicelab.errors import ConfigError
from voicelab.pipeline import ChainedModels, ChainedSession, endpoints, split_sentences
from voicelab.recording import load_recording
from voicelab.server import ScriptedBrain
from voicelab.server.app import resolve_script


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with voicelab.serve("returns_desk", pace="fast", token="sk-local") as srv:
        yield srv


async def run(
    server: Any, architecture: str, folder: Path, agent: Agent | None = None, turns: int = 2
) -> Any:
    session = voicelab.connect(
        agent or returns_desk_agent(),
        url=server.url,
        api_key="sk-local",
        record_dir=folder,
        architecture=architecture,
    )
    async with session:
        await play_turns(session, caller_turns("returns")[:turns], realtime=False)
    return load_recording(folder)


def test_endpoints_follow_the_realtime_url() -> None:
    assert endpoints("ws://127.0.0.1:8000/v1/realtime") == (
        "http://127.0.0.1:8000/v1",
        "ws://127.0.0.1:8000/v1",
    )
    assert endpoints(None) == ("https://api.openai.com/v1", "wss://api.openai.com/v1")
    with pytest.raises(ConfigError, match="not a server URL"):
        endpoints("ftp://x")


def test_connect_picks_the_architecture() -> None:
    session = voicelab.connect(url="ws://127.0.0.1:9/v1/realtime", architecture="chained", record_dir=False)
    assert isinstance(session, ChainedSession) and session.architecture == "chained"
    assert session.models == ChainedModels()
    assert voicelab.connect(url="ws://127.0.0.1:9/v1/realtime", record_dir=False).architecture == "realtime"
    with pytest.raises(ConfigError, match="architecture='bogus'"):
        voicelab.connect(architecture="bogus")
    with pytest.raises(ConfigError, match="architecture='chained'"):
        voicelab.connect(url="ws://127.0.0.1:9/v1/realtime", models=ChainedModels())


def test_sentences_are_cut_where_speech_may_pause() -> None:
    assert split_sentences("Hello there. How are", final=False) == (["Hello there. "], "How are")
    assert split_sentences("It costs 3.", final=False) == ([], "It costs 3.")
    assert split_sentences("It costs 3.5 euros", final=True) == (["It costs 3.5 euros"], "")


async def test_chained_and_realtime_sessions_give_comparable_tables(server: Any, tmp_path: Path) -> None:
    realtime = await run(server, "realtime", tmp_path / "realtime")
    chained = await run(server, "chained", tmp_path / "chained")
    assert chained.meta["architecture"] == "chained" and chained.meta["models"]["speech"] == "gpt-4o-mini-tts"
    r_turns, c_turns = tables.turns(realtime), tables.turns(chained)
    assert list(r_turns.columns) == list(c_turns.columns)
    assert len(c_turns) == len(r_turns) == 2
    assert c_turns["first_audio_ms"].notna().all()
    # the split: transcription + text model + synthesis, within the end-of-speech-to-first-audio latency
    split = c_turns[["transcription_ms", "text_model_ms", "synthesis_ms"]]
    assert split.notna().all().all() and (split >= 0).all().all()
    assert (split.sum(axis=1) <= c_turns["eos_to_first_audio_ms"] + 1e-6).all()
    assert r_turns[["transcription_ms", "text_model_ms", "synthesis_ms"]].isna().all().all()
    r_hist, c_hist = tables.history(realtime), tables.history(chained)
    said = [t for t in c_hist[c_hist.role_or_type == "assistant"]["text"]]
    assert said == [t for t in r_hist[r_hist.role_or_type == "assistant"]["text"]]
    assert said[0] == "I can help with that. What is your order number?"
    assert said[1].startswith("I found order four five six seven. It was delivered")
    calls = tables.tool_calls(chained)
    assert list(calls["name"]) == ["lookup_order"] == list(tables.tool_calls(realtime)["name"])
    both = tables.compare({"realtime": realtime, "chained": chained})
    assert list(both["architecture"]) == ["realtime", "chained"]
    assert both.loc["chained", "median_transcription_ms"] >= 0
    assert both.loc["chained", "tool_calls"] == both.loc["realtime", "tool_calls"] == 1


async def test_guardrails_run_on_the_text_before_it_is_spoken(server: Any, tmp_path: Path) -> None:
    @output_guardrail
    def no_order_numbers(context: Any, agent: Any, text: str) -> GuardrailResult:
        return GuardrailResult("order number" in text.lower())

    agent = returns_desk_agent().clone(output_guardrails=[no_order_numbers], guardrail_follow_up=None)
    rec = await run(server, "chained", tmp_path / "guarded", agent=agent, turns=1)
    trips = tables.guardrail_trips(rec)
    assert list(trips["guardrail"]) == ["no_order_numbers"]
    spoken = [
        e["event"]
        for e in rec.events
        if e.get("event", {}).get("type") == "response.output_audio_transcript.delta"
    ]
    heard = "".join(e["delta"] for e in spoken)
    assert heard == "I can help with that. "  # the second sentence was checked, tripped, never synthesized
    done = [e["event"] for e in rec.events if e.get("event", {}).get("type") == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"


class SpyBrain:
    """The returns desk script, remembering the conversation of every request (what the text model saw)."""

    def __init__(self) -> None:
        self.inner = ScriptedBrain(resolve_script("returns_desk").script)
        self.seen: list[tuple[dict[str, Any], ...]] = []

    @property
    def phrases(self) -> Any:
        return self.inner.phrases

    def reply(self, context: Any) -> Any:
        self.seen.append(tuple(context.items))
        return self.inner.reply(context)


async def test_barge_in_stops_playback_and_history_keeps_what_was_heard(tmp_path: Path) -> None:
    turns = caller_turns("returns")
    silence = voicelab.Audio.from_array(np.zeros(24000), 24000)
    spy = SpyBrain()
    with voicelab.serve(brain=spy, pace="fast") as server:
        session = voicelab.connect(
            returns_desk_agent(), url=server.url, record_dir=tmp_path / "barge", architecture="chained"
        )
        async with session:
            await session.send_audio(turns[0])
            await session.send_audio(silence)
            answer_item = None
            async for event in session:
                if event.type == "audio" and answer_item is None:
                    answer_item = event.item_id
                if event.type == "response_done":
                    break
            assert answer_item is not None
            session.playback.on_played(answer_item, 1200)  # a player reports 1.2 s heard; the caller speaks
            await session.send_audio(turns[1])
            await session.send_audio(silence)
            interrupted = None
            async for event in session:
                if event.type == "audio_interrupted":
                    interrupted = event
                if event.type == "response_done":
                    break
            assert interrupted is not None and interrupted.played_ms == 1200
    history = tables.history(load_recording(tmp_path / "barge"))
    first = history[history.item_id == answer_item].iloc[0]
    assert first["interrupted"] and first["truncated_ms"] == 1200
    # the text model's next request has the assistant turn as heard: the first words only
    full = "I can help with that. What is your order number?"
    said = [
        part.get("text")
        for item in spy.seen[-1]
        if item.get("role") == "assistant"
        for part in item.get("content") or []
    ]
    assert len(said) == 1 and said[0] and full.startswith(said[0]) and len(said[0]) < len(full)


async def test_interrupt_cancels_the_rest_of_the_answer(server: Any, tmp_path: Path) -> None:
    session = voicelab.connect(
        returns_desk_agent(), url=server.url, api_key="sk-local", record_dir=False, architecture="chained"
    )
    async with session:
        await session.send_text("Hi, I would like to return an order.")
        statuses = []
        async for event in session:
            if event.type == "response_started":
                await session.interrupt()
            if event.type == "response_done":
                statuses.append(event.status)
                break
    assert statuses == ["cancelled"]


async def test_the_key_stays_out_of_logs_recordings_and_reprs(tmp_path: Path, caplog: Any) -> None:
    import logging

    secret = "sk-" + "chained-secret-4242"
    caplog.set_level(logging.DEBUG)
    with voicelab.serve("returns_desk", pace="fast", token=secret) as server:
        session = voicelab.connect(
            returns_desk_agent(),
            url=server.url,
            api_key=secret,
            record_dir=tmp_path / "rec",
            architecture="chained",
        )
        async with session:
            await session.send_text("Hi, I would like to return an order.")
            async for event in session:
                if event.type == "response_done":
                    break
            shown = repr(session)
    assert secret not in shown and "ChainedSession(" in shown
    assert secret not in caplog.text
    for path in (tmp_path / "rec").iterdir():
        if path.suffix in (".json", ".jsonl"):
            assert secret not in path.read_text()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ChainedModels(transcribe=5), ("transcribe", "str")),
        (lambda: ChainedModels(text=""), ("text", "empty")),
        (lambda: ChainedModels(speeech="x"), ("speeech", "did you mean 'speech'")),
        (
            lambda: voicelab.connect(
                None, url="ws://127.0.0.1:1/v1/realtime", architecture="chained", models=5
            ),
            ("models must be a voicelab.ChainedModels",),
        ),
        (lambda: ChainedSession(5), ("SessionConfig", "architecture='chained'")),
    ],
)
def test_bad_chained_definitions(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
