"""Slow work off the loop: a user's brain (sync or async) and transcription are handed out by the engine
(`hand_out_work=True`) and run by the app in worker threads, so that one slow session stalls no other."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from server_helpers import (
    FAKE_SERVICES,
    SCRIPT,
    EnergyDetector,
    fake_transcriber,
    fake_tts,
    types_of,
    validate,
)
from websockets.asyncio.client import ClientConnection, connect

from voicelab.server import Server
from voicelab.server.brains import BrainInput, Say, ScriptedBrain
from voicelab.server.engine import Engine
from voicelab.server.services import EngineServices, StreamingTranscriber
from voicelab.server.work import Work, WorkResult


class GateBrain:
    """Answers "slow" only once the test opens the gate (a user's brain blocked on an LLM call)."""

    phrases: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()

    def reply(self, context: BrainInput) -> Say:
        if context.user_text == "wait":
            self.entered.set()
            if not self.gate.wait(30):
                raise TimeoutError("the test never opened the gate")
            return Say("slow")
        return Say("quick")


class AsyncBrain:
    phrases: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.loops: list[int] = []

    async def reply(self, context: BrainInput) -> Say:
        await asyncio.sleep(0)
        self.loops.append(id(asyncio.get_running_loop()))
        return Say(f"async {context.user_text}")


class FlakyBrain:
    phrases: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.calls = 0

    def reply(self, context: BrainInput) -> Say:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the model is down")
        return Say("back again")


def user_text(text: str) -> dict[str, Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item}


async def recv(ws: ClientConnection) -> dict[str, Any]:
    event = json.loads(await asyncio.wait_for(ws.recv(), 20))
    validate([event])
    return event


async def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    seen = [await recv(ws)]
    while seen[-1]["type"] != kind:
        seen.append(await recv(ws))
    return seen


async def ask(ws: ClientConnection, text: str) -> None:
    await ws.send(json.dumps(user_text(text)))
    await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))


def said(events: list[dict[str, Any]]) -> str:
    done = next(e for e in events if e["type"] == "response.done")
    return str(done["response"]["output"][0]["content"][0]["text"])


async def test_a_blocked_brain_in_one_session_does_not_stall_another() -> None:
    brain = GateBrain()
    with Server(brain=brain, pace="fast", services=FAKE_SERVICES) as server:
        url = server.url + "?model=gpt-realtime"
        async with connect(url) as a, connect(url) as b:
            await recv(a)
            await recv(b)
            await ask(a, "wait")
            created = await until(a, "response.created")
            assert await asyncio.to_thread(brain.entered.wait, 20)  # A's brain is now blocked in a thread
            await ask(b, "go")
            b_events = await until(b, "rate_limits.updated")
            assert said(b_events) == "quick"
            assert not brain.gate.is_set()  # B's whole response came while A's brain was still blocked
            brain.gate.set()
            a_events = created + await until(a, "rate_limits.updated")
            assert said(a_events) == "slow"
            assert [e["type"] for e in a_events].count("response.created") == 1


async def test_an_async_brain_is_awaited_on_the_server_loop() -> None:
    brain = AsyncBrain()
    with Server(brain=brain, pace="fast", services=FAKE_SERVICES) as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            await recv(ws)
            await ask(ws, "hello")
            assert said(await until(ws, "response.done")) == "async hello"
    assert len(brain.loops) == 1


def test_an_async_brain_works_in_an_engine_without_a_driver() -> None:
    engine = Engine(AsyncBrain(), pace="fast", services=FAKE_SERVICES, seed=1)  # type: ignore[arg-type]
    engine.start(0.0)
    engine.receive(json.dumps(user_text("there")), 0.0)
    events = validate(engine.receive(json.dumps({"type": "response.create"}), 0.0))
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"] == "async there"


async def test_a_raising_brain_fails_its_response_and_the_connection_goes_on() -> None:
    with Server(brain=FlakyBrain(), pace="fast", services=FAKE_SERVICES) as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            await recv(ws)
            await ask(ws, "first")
            failed = await until(ws, "rate_limits.updated")
            assert types_of(failed)[-3:] == ["response.created", "response.done", "rate_limits.updated"]
            body = failed[-2]["response"]
            assert body["status"] == "failed"
            assert body["status_details"]["error"]["message"] == "RuntimeError: the model is down"
            await ask(ws, "second")
            assert said(await until(ws, "response.done")) == "back again"


def drive(engine: Engine, events: list[dict[str, Any]]) -> list[Work]:
    validate(events)
    return engine.take_work()


def test_a_response_cancelled_while_its_brain_works_drops_the_late_answer() -> None:
    engine = Engine(GateBrain(), pace="fast", services=FAKE_SERVICES, seed=1, hand_out_work=True)  # type: ignore[arg-type]
    engine.start(0.0)
    engine.receive(json.dumps(user_text("anything")), 0.0)
    created = validate(engine.receive(json.dumps({"type": "response.create"}), 1.0))
    assert types_of(created) == ["response.created"]
    (work,) = engine.take_work()
    assert work.kind == "reply" and engine.pending_work == 1
    # the response is in progress while the brain works: a second one is refused, a cancel ends it
    refused = validate(engine.receive(json.dumps({"type": "response.create"}), 2.0))
    assert refused[0]["error"]["code"] == "conversation_already_has_active_response"
    cancelled = validate(engine.receive(json.dumps({"type": "response.cancel"}), 3.0))
    assert types_of(cancelled) == ["response.done", "rate_limits.updated"]
    assert cancelled[0]["response"]["status"] == "cancelled"
    late = validate(engine.deliver(work, WorkResult(Say("too late")), 4.0))
    assert late == [] and engine.items[-1]["role"] == "user"  # no assistant item from the late answer


def test_the_user_speaking_cancels_a_response_whose_brain_still_works() -> None:
    engine = Engine(GateBrain(), pace="fast", services=FAKE_SERVICES, seed=1, hand_out_work=True)  # type: ignore[arg-type]
    engine.start(0.0)
    vad = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    engine.receive(json.dumps({"type": "session.update", "session": vad}), 0.0)
    engine.receive(json.dumps(user_text("x")), 0.0)
    engine.receive(json.dumps({"type": "response.create"}), 0.0)
    (work,) = engine.take_work()
    tone = (0.3 * np.sin(np.arange(4800) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(tone).decode()}
    events = validate(engine.receive(json.dumps(append), 200.0))
    assert types_of(events)[:2] == ["input_audio_buffer.speech_started", "response.done"]
    assert events[1]["response"]["status_details"]["reason"] == "turn_detected"
    assert validate(engine.deliver(work, work.run(), 300.0)) == []


class SpyStream:
    def __init__(self) -> None:
        self.future: Future[str] = Future()

    def feed(self, pcm16: bytes) -> None:
        pass

    def finish(self) -> Future[str]:
        return self.future

    def cancel(self) -> None:
        pass


def spy_transcribers(whole: str) -> tuple[list[SpyStream], Callable[[Any], StreamingTranscriber]]:
    """A transcriber factory whose streams are SpyStreams (kept in the returned list, in order) and whose
    whole-turn decode answers `whole`."""
    streams: list[SpyStream] = []

    def factory(phrases: Any) -> StreamingTranscriber:
        def stream() -> SpyStream:
            streams.append(SpyStream())
            return streams[-1]

        return StreamingTranscriber(lambda pcm16: whole, stream)

    return streams, factory


def test_a_turn_transcript_decoded_elsewhere_is_handed_out_not_polled() -> None:
    streams, factory = spy_transcribers("whole")
    services = EngineServices(fake_tts, EnergyDetector, factory)
    engine = Engine(ScriptedBrain(SCRIPT), pace="fast", services=services, seed=1, hand_out_work=True)
    engine.start(0.0)
    session = {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    engine.receive(json.dumps({"type": "session.update", "session": session}), 0.0)
    tone = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()
    pcm = bytes(500 * 48) + tone + bytes(400 * 48)
    events: list[dict[str, Any]] = []
    for offset in range(0, len(pcm), 1920):
        append = {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[offset : offset + 1920]).decode(),
        }
        events += validate(engine.receive(json.dumps(append), 10.0))
        events += validate(engine.advance(10.0))
    assert "input_audio_buffer.committed" in types_of(events)
    (work,) = engine.take_work()
    assert work.kind == "transcript" and work.future is streams[0].future
    assert engine.next_deadline() is None  # nothing to poll: the driver delivers the transcript
    streams[0].future.set_result("hello there")
    follow = validate(engine.deliver(work, work.run(), 20.0))
    assert types_of(follow)[:3] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    assert next(e for e in follow if e["type"] == "response.output_audio_transcript.done")["transcript"] == (
        "Hi, how can I help?"
    )


def test_a_manual_commit_transcript_comes_before_the_next_frames_events() -> None:
    services = EngineServices(fake_tts, EnergyDetector, fake_transcriber)
    engine = Engine(ScriptedBrain(SCRIPT), pace="fast", services=services, seed=1, hand_out_work=True)
    engine.start(0.0)
    session = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": None, "transcription": {"model": "gpt-4o-transcribe"}}},
    }
    engine.receive(json.dumps({"type": "session.update", "session": session}), 0.0)
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(4800 * 2)).decode()}
    engine.receive(json.dumps(append), 0.0)
    committed = validate(engine.receive(json.dumps({"type": "input_audio_buffer.commit"}), 0.0))
    assert types_of(committed) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    (work,) = engine.take_work()
    ping = {"type": "conversation.item.retrieve", "item_id": "nope"}
    assert engine.receive(json.dumps(ping), 1.0) == []  # waits for the transcript's events
    follow = validate(engine.deliver(work, work.run(), 2.0))
    assert types_of(follow) == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "error",
    ]


@pytest.mark.parametrize("hand_out", [False, True])
def test_a_failing_transcriber_gives_transcription_failed(hand_out: bool) -> None:
    def broken(phrases: Any) -> Any:
        def transcribe(pcm16: bytes) -> str:
            raise RuntimeError("decoder crashed")

        return transcribe

    engine = Engine(
        ScriptedBrain(SCRIPT),
        pace="fast",
        services=EngineServices(fake_tts, EnergyDetector, broken),
        seed=1,
        hand_out_work=hand_out,
    )
    engine.start(0.0)
    session = {
        "type": "realtime",
        "audio": {"input": {"turn_detection": None, "transcription": {"model": "gpt-4o-transcribe"}}},
    }
    engine.receive(json.dumps({"type": "session.update", "session": session}), 0.0)
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(9600)).decode()}
    engine.receive(json.dumps(append), 0.0)
    events = validate(engine.receive(json.dumps({"type": "input_audio_buffer.commit"}), 0.0))
    for work in engine.take_work():
        events += validate(engine.deliver(work, work.run(), 1.0))
    failed = [e for e in events if e["type"].endswith("transcription.failed")]
    assert len(failed) == 1 and "decoder crashed" in failed[0]["error"]["message"]


async def test_a_blocked_brain_on_the_http_api_does_not_stall_a_realtime_session() -> None:
    import httpx

    brain = GateBrain()
    with Server(brain=brain, pace="fast", services=FAKE_SERVICES) as server:
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "wait"}]}
        async with httpx.AsyncClient(timeout=30) as http:
            waiting = asyncio.create_task(http.post(server.http_base_url + "/chat/completions", json=chat))
            assert await asyncio.to_thread(brain.entered.wait, 20)
            async with connect(server.url + "?model=gpt-realtime") as ws:
                await recv(ws)
                await ask(ws, "go")
                assert said(await until(ws, "response.done")) == "quick"
            assert not brain.gate.is_set() and not waiting.done()
            brain.gate.set()
            answer = (await waiting).json()
    assert answer["choices"][0]["message"]["content"] == "slow"


async def test_an_async_brain_answers_the_http_api() -> None:
    import httpx

    with Server(brain=AsyncBrain(), pace="fast", services=FAKE_SERVICES) as server:
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"model": "gpt-4o", "input": "hi"}
            answer = (await http.post(server.http_base_url + "/responses", json=body)).json()
    assert answer["output"][0]["content"][0]["text"] == "async hi"


class WrappedBrain:
    """The test script, as a user's brain: the engine hands its decisions out."""

    def __init__(self) -> None:
        self.inner = ScriptedBrain(SCRIPT)

    @property
    def phrases(self) -> Any:
        return self.inner.phrases

    def reply(self, context: BrainInput) -> Any:
        return self.inner.reply(context)


def conversation(engine: Engine, drive_work: bool) -> list[dict[str, Any]]:
    """A server-VAD call with transcription, pings and client requests; work performed once it is out."""

    def drained(events: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        while drive_work and (work := engine.take_work()):
            for one in work:
                events += engine.deliver(one, one.run(), now)
        return validate(events)

    session = {
        "type": "realtime",
        "audio": {
            "input": {
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
                "transcription": {"model": "gpt-4o-transcribe"},
            }
        },
    }
    tone = (0.3 * np.sin(np.arange(24 * 700) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()
    pcm = (bytes(300 * 48) + tone + bytes(700 * 48)) * 3
    out = drained(engine.start(0.0), 0.0)
    now = 0.0
    out += drained(engine.receive(json.dumps({"type": "session.update", "session": session}), now), now)
    for index, offset in enumerate(range(0, len(pcm), 1920)):
        now += 40.0
        audio = base64.b64encode(pcm[offset : offset + 1920]).decode()
        frames = [{"type": "input_audio_buffer.append", "audio": audio}]
        if index % 9 == 4:
            frames.append({"type": "conversation.item.retrieve", "item_id": "nope"})
        for frame in frames:
            out += drained(engine.receive(json.dumps(frame), now), now)
        while (due := engine.next_deadline()) is not None and due <= now:
            out += drained(engine.advance(now), now)
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    for frame in (
        user_text("what is the weather in Paris"),
        {"type": "response.create", "response": {"tools": tools}},
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(tone).decode()},
        {"type": "input_audio_buffer.commit"},
        {"type": "response.create"},
    ):
        now += 10.0
        out += drained(engine.receive(json.dumps(frame), now), now)
        while (due := engine.next_deadline()) is not None and due <= now:
            out += drained(engine.advance(now), now)
    while (due := engine.next_deadline()) is not None:
        now = max(now, due)
        out += drained(engine.advance(now), now)
    return out


def test_handed_out_work_performed_at_once_gives_the_inline_events() -> None:
    services = EngineServices(fake_tts, EnergyDetector, fake_transcriber)

    def engine(brain: Any, hand_out: bool) -> Engine:
        return Engine(
            brain, pace="fast", services=services, seed=5, wall_clock=lambda: 0.0, hand_out_work=hand_out
        )

    inline = conversation(engine(ScriptedBrain(SCRIPT), False), drive_work=False)
    kinds = types_of(inline)
    assert kinds.count("conversation.item.input_audio_transcription.completed") == 4
    assert kinds.count("response.done") == 5 and kinds.count("error") > 3
    assert conversation(engine(ScriptedBrain(SCRIPT), True), drive_work=True) == inline
    # a user's brain: every decision handed out; the same events (ids aside: a call id is drawn later)
    handed = conversation(engine(WrappedBrain(), True), drive_work=True)

    def without_ids(events: list[dict[str, Any]]) -> str:
        import re

        return re.sub(r'"(event|call)_[A-Za-z0-9]+"', '"-"', json.dumps(events))

    assert without_ids(handed) == without_ids(inline)


class ForeverBrain:
    """An `async def` brain that waits until it is cancelled."""

    phrases: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def reply(self, context: BrainInput) -> Say:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Say("never")


async def test_cancelling_a_response_stops_its_async_brain() -> None:
    brain = ForeverBrain()
    with Server(brain=brain, pace="fast", services=FAKE_SERVICES) as server:
        async with connect(server.url + "?model=gpt-realtime") as ws:
            await recv(ws)
            await ask(ws, "hello")
            await until(ws, "response.created")
            assert await asyncio.to_thread(brain.started.wait, 20)
            await ws.send(json.dumps({"type": "response.cancel"}))
            done = (await until(ws, "response.done"))[-1]
            assert done["response"]["status"] == "cancelled"
            assert await asyncio.to_thread(brain.cancelled.wait, 20)
            await ask(ws, "again")  # the connection goes on; the next response waits for its own brain
            assert types_of(await until(ws, "response.created"))[-1] == "response.created"


class ClassBrain:
    phrases: tuple[str, ...] = ()
    made = 0

    def __init__(self) -> None:
        ClassBrain.made += 1

    def reply(self, context: BrainInput) -> Say:
        return Say(f"brain number {ClassBrain.made}")


async def test_a_brain_class_is_a_factory_of_one_brain_per_session() -> None:
    with Server(brain=ClassBrain, pace="fast", services=FAKE_SERVICES) as server:
        for number in (1, 2):
            async with connect(server.url + "?model=gpt-realtime") as ws:
                await recv(ws)
                await ask(ws, "hi")
                assert said(await until(ws, "response.done")) == f"brain number {number}"


def test_a_brain_that_is_no_brain_fails_at_serve_with_the_fix() -> None:
    from voicelab.errors import ConfigError

    class NoPhrases:
        def reply(self, context: BrainInput) -> Say:
            return Say("x")

    with pytest.raises(ConfigError, match="needs a `phrases` attribute"):
        Server(brain=NoPhrases(), services=FAKE_SERVICES)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="zero-argument factory"):
        Server(brain=42, services=FAKE_SERVICES)  # type: ignore[arg-type]


def test_a_reply_that_is_no_say_or_call_fails_the_response_with_the_fix() -> None:
    class Chatty:
        phrases: tuple[str, ...] = ()

        def reply(self, context: BrainInput) -> str:
            return "plain text"

    engine = Engine(Chatty(), pace="fast", services=FAKE_SERVICES, seed=1)  # type: ignore[arg-type]
    engine.start(0.0)
    events = validate(engine.receive(json.dumps({"type": "response.create"}), 0.0))
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["status"] == "failed"
    assert "returned str; return voicelab.server.Say(text)" in done["status_details"]["error"]["message"]


def test_a_failed_stream_transcript_is_decoded_whole_in_a_worker() -> None:
    streams, factory = spy_transcribers("decoded whole")
    engine = Engine(
        ScriptedBrain(SCRIPT),
        pace="fast",
        services=EngineServices(fake_tts, EnergyDetector, factory),
        seed=1,
        hand_out_work=True,
        intent="transcription",
    )
    engine.start(0.0)
    session = {
        "type": "transcription",
        "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
    }
    engine.receive(json.dumps({"type": "session.update", "session": session}), 0.0)
    tone = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 220 / 24000) * 32767).astype("<i2").tobytes()
    pcm = bytes(500 * 48) + tone + bytes(400 * 48)
    for offset in range(0, len(pcm), 1920):
        append = {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[offset : offset + 1920]).decode(),
        }
        engine.receive(json.dumps(append), 10.0)
        engine.advance(10.0)
    (waiting,) = engine.take_work()
    streams[0].future.set_exception(RuntimeError("the worker process died"))
    assert validate(engine.deliver(waiting, waiting.run(), 20.0)) == []
    (whole,) = engine.take_work()  # the whole turn, decoded in a worker thread instead
    assert whole.future is None and whole.kind == "transcript"
    events = validate(engine.deliver(whole, whole.run(), 30.0))
    assert [e.get("transcript") for e in events if e["type"].endswith("transcription.completed")] == [
        "decoded whole"
    ]
    assert "response.created" not in types_of(events)  # a transcription session never answers


def test_worker_threads_are_daemons_that_run_jobs_in_parallel() -> None:
    from voicelab.server.work import WorkerThreads

    threads = WorkerThreads(2)
    gate = threading.Event()
    blocked = threads.submit(gate.wait, 30)
    quick = threads.submit(lambda: threading.current_thread())
    worker = quick.result(20)
    assert worker.daemon and worker.name.startswith("voicelab-work")
    assert not blocked.done()  # the second job ran beside the blocked one
    gate.set()
    assert blocked.result(20) is True
    threads.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        threads.submit(print)


def test_work_is_delivered_only_to_the_engine_that_handed_it_out() -> None:
    def engine() -> Engine:
        made = Engine(GateBrain(), pace="fast", services=FAKE_SERVICES, seed=1, hand_out_work=True)  # type: ignore[arg-type]
        made.start(0.0)
        made.receive(json.dumps(user_text("anything")), 0.0)
        made.receive(json.dumps({"type": "response.create"}), 0.0)
        return made

    first, second = engine(), engine()
    (mine,) = first.take_work()
    (theirs,) = second.take_work()
    assert mine.id == theirs.id  # numbered per engine
    assert validate(first.deliver(theirs, theirs.run(), 1.0)) == []
    assert first.pending_work == 1
    events = validate(first.deliver(mine, mine.run(), 2.0))
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"] == "quick"
    assert first.pending_work == 0
