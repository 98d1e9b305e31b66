"""`ClientProtocol` without any socket, task or clock (issue 8, thin core): frames in, app events out;
commands in, client events out. Everything here runs synchronously."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicelab import events as ev
from voicelab.audio.core import Audio
from voicelab.audio.g711 import alaw_encode, ulaw_encode
from voicelab.config import SessionConfig
from voicelab.errors import ArgumentError, AudioError, ConfigError, LocalProtocolError, SessionError
from voicelab.playback import PlaybackTracker
from voicelab.protocol import ClientProtocol
from voicelab.protocol.client import State
from voicelab.protocol.samples import audio_turn, error_event, function_call_turn, session_created, text_turn


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A stand-in for RecordingWriter: wire lines in order, audio placed back to back on the output track."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float | None]] = []
        self.output_ms = 0.0
        self.cuts: list[float] = []
        self.pcm_bytes = 0

    def record_wire(
        self, direction: str, event: dict[str, Any], pcm: bytes | None = None, t_ms: float | None = None
    ) -> dict[str, Any]:
        self.lines.append((direction, event["type"], t_ms))
        self.pcm_bytes += len(pcm or b"")
        if pcm is not None:
            start, self.output_ms = self.output_ms, self.output_ms + len(pcm) / 48.0
            return {**event, "delta": {"$audio": {"track": "output", "start_ms": start}}}
        return event

    def cut_output(self, at_ms: float) -> None:
        self.cuts.append(at_ms)


def opened(config: SessionConfig | None = None, **kwargs: Any) -> ClientProtocol:
    protocol = ClientProtocol(config or SessionConfig(), **kwargs)
    protocol.connection_open()
    return protocol


def feed(protocol: ClientProtocol, *events: dict[str, Any] | str, t_ms: float = 0.0) -> list[ev.AppEvent]:
    out: list[ev.AppEvent] = []
    for event in events:
        out += protocol.receive(event if isinstance(event, str) else json.dumps(event), t_ms)
    return out


def created(response_id: str) -> dict[str, Any]:
    body = {"id": response_id, "object": "realtime.response", "status": "in_progress", "output": []}
    return {"type": "response.created", "event_id": "c_" + response_id, "response": body}


def done(response_id: str, status: str = "completed") -> dict[str, Any]:
    body = {"id": response_id, "object": "realtime.response", "status": status, "output": []}
    return {"type": "response.done", "event_id": "d_" + response_id, "response": body}


def speech_started() -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_started", "event_id": "s", "audio_start_ms": 9, "item_id": "u"}


def test_commands_are_refused_before_open_and_after_close() -> None:
    protocol = ClientProtocol(SessionConfig())
    assert protocol.state is State.CONNECTING
    with pytest.raises(SessionError, match="never opened"):
        protocol.send_text("hi")
    protocol.connection_open()
    assert [e["type"] for e in protocol.send_text("hi")] == ["conversation.item.create", "response.create"]
    protocol.connection_closed()
    assert protocol.state is State.CLOSED
    with pytest.raises(SessionError, match=r"voicelab\.connect"):
        protocol.commit()
    with pytest.raises(SessionError):
        next(protocol.audio_appends(np.zeros(2400, dtype=np.int16), rate=24000))
    assert feed(protocol, *text_turn())  # frames are still read after the close


def test_commands_build_valid_events_and_refuse_bad_ones() -> None:
    protocol = opened()
    (update,) = protocol.session_update()
    assert update["type"] == "session.update" and update["session"]["type"] == "realtime"
    (item,) = protocol.function_output_item("call_1", {"temp": 21})
    assert item["item"] == {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'}
    (sent,) = protocol.send_event({"type": "input_audio_buffer.clear"})
    assert sent["event_id"] and sent["type"] == "input_audio_buffer.clear"
    with pytest.raises(LocalProtocolError, match="not a Realtime GA client event type"):
        protocol.send_event({"type": "response.bogus"})
    with pytest.raises(ConfigError, match="client event dict"):
        protocol.send_event("response.create")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a str"):
        protocol.send_text(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"ClientProtocol takes a voicelab\.SessionConfig"):
        ClientProtocol({"voice": "ash"})  # type: ignore[arg-type]


def test_update_merges_flat_and_ga_fields_into_the_config_in_force() -> None:
    protocol = opened(SessionConfig(voice="ash"))
    (first,) = protocol.update({"instructions": "Shorter."})
    assert (
        first["session"]["instructions"] == "Shorter."
        and first["session"]["audio"]["output"]["voice"] == "ash"
    )
    (second,) = protocol.update({"audio": {"output": {"voice": "verse"}}})
    assert second["session"]["audio"]["output"]["voice"] == "verse"
    assert second["session"]["instructions"] == "Shorter."
    assert protocol.config.voice == "verse"
    with pytest.raises(ConfigError):
        protocol.update({"voice": "robot"})
    with pytest.raises(ConfigError, match="SessionConfig or a dict"):
        protocol.update("verse")  # type: ignore[arg-type]
    assert protocol.config.voice == "verse"  # a refused update changes nothing


def test_a_text_turn_gives_app_events_in_order_and_the_history() -> None:
    protocol = opened(SessionConfig(output_modalities=["text"]))
    got = feed(protocol, session_created(), *text_turn("Hello there", "Hi! How can I help?"))
    kinds = [e.type for e in got]
    assert kinds.index("history_added") < kinds.index("response_started") < kinds.index("transcript_done")
    assert kinds.index("transcript_done") < kinds.index("response_done")
    assert "".join(e.delta for e in got if isinstance(e, ev.TranscriptDelta)) == "Hi! How can I help?"
    assert [(i.role, i.status) for i in protocol.history] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert protocol.history[1].text == "Hi! How can I help?"
    finished = next(e for e in got if isinstance(e, ev.ResponseDone))
    assert (finished.response_id, finished.status, finished.usage["total_tokens"]) == (
        "resp_text1",
        "completed",
        30,
    )
    assert not protocol.responding and protocol.events_to_send() == []


def test_a_function_call_is_an_app_event_with_its_ids() -> None:
    protocol = opened()
    got = feed(protocol, *function_call_turn("get_weather", '{"city":"Paris"}', call_id="call_1"))
    call = next(e for e in got if isinstance(e, ev.FunctionCall))
    assert (call.name, call.arguments, call.call_id, call.item_id, call.response_id) == (
        "get_weather",
        '{"city":"Paris"}',
        "call_1",
        "item_call1",
        "resp_call1",
    )


def test_a_create_waits_behind_the_active_response_and_goes_out_after_its_done() -> None:
    protocol = opened()
    (first,) = protocol.create_response()
    assert protocol.create_response(instructions="second") == []  # the first is in flight
    feed(protocol, created("r1"))
    assert protocol.responding and protocol.events_to_send() == []
    feed(protocol, done("r1"))
    (second,) = protocol.events_to_send()
    assert second["type"] == "response.create" and second["response"] == {"instructions": "second"}
    assert protocol.is_create_in_flight(second) and not protocol.is_create_in_flight(first)
    assert protocol.events_to_send() == []  # emptied
    (oob,) = protocol.create_response(conversation="none")  # out of band: never queued
    assert oob["response"]["conversation"] == "none"


def test_an_error_answering_the_create_releases_the_queue() -> None:
    protocol = opened()
    (first,) = protocol.create_response(audio={"output": {"bogus": 1}})  # nested: only the server knows
    assert protocol.create_response() == []
    refusal = error_event("Unknown parameter: 'response.audio.output.bogus'.", "unknown_parameter")
    refusal["error"]["event_id"] = first["event_id"]
    got = feed(protocol, refusal)
    assert [(e.code, e.fatal) for e in got if isinstance(e, ev.Error)] == [("unknown_parameter", False)]
    assert protocol.last_error == refusal["error"]
    (released,) = protocol.events_to_send()
    assert released["type"] == "response.create" and protocol.responding


def test_a_failed_send_leaves_nothing_in_flight() -> None:
    protocol = opened()
    (event,) = protocol.create_response()
    protocol.send_failed(event)
    assert not protocol.responding
    assert len(protocol.create_response()) == 1  # not queued behind a create that never went out


def test_cancel_only_when_something_is_active_and_a_raced_cancel_is_no_error() -> None:
    protocol = opened()
    assert protocol.cancel_response() == []
    feed(protocol, created("r1"))
    assert protocol.create_response() == []  # queued behind r1
    (cancel,) = protocol.cancel_response()
    assert cancel["type"] == "response.cancel"
    feed(protocol, done("r1", "cancelled"))
    assert protocol.events_to_send() == []  # the cancel dropped the queued create
    race = error_event("Cancellation failed: no active response found", "response_cancel_not_active")
    race["error"]["event_id"] = cancel["event_id"]
    got = feed(protocol, race)
    assert [type(e) for e in got] == [ev.RawServerEvent]


def test_any_frame_gives_app_events_at_worst() -> None:
    recorder = Recorder()
    protocol = opened(recorder=recorder)
    bad_audio = {
        "type": "response.output_audio.delta",
        "event_id": "e",
        "response_id": "r",
        "item_id": "a",
        "output_index": 0,
        "content_index": 0,
        "delta": "not base64!",
    }
    frames: list[str] = [
        "this is not json",
        "[" * 100_000,
        '{"type": 5}',
        "[1, 2]",
        json.dumps({"type": "x", "deep": json.loads("[" * 200 + "]" * 200)}),
        json.dumps(bad_audio),
        '{"type": "session.updated", "event_id": "e"}',  # known type, invalid payload
    ]
    got: list[ev.AppEvent] = []
    for frame in frames:
        got += protocol.receive(frame, 1.0)
    got += protocol.receive(b"\xff\xfe", 2.0)
    codes = [e.code for e in got if isinstance(e, ev.Error)]
    assert codes == ["invalid_json"] * 5 + ["invalid_server_event", "invalid_server_event", "invalid_json"]
    assert all(not e.fatal for e in got if isinstance(e, ev.Error))
    assert ("server", "invalid_frame", 1.0) in recorder.lines
    got = feed(protocol, {"type": "future.event", "event_id": "e", "x": 1})
    assert [type(e) for e in got] == [ev.RawServerEvent]


def test_both_spellings_unknown_fields_and_events_after_response_done() -> None:
    """PROTOCOL §15.1: none of these is an error, and response.done is not the last frame."""
    asst = {
        "id": "a1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "audio", "transcript": "Hi there"}],  # beta part spelling in an item
    }
    base = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    protocol = opened()
    got = feed(
        protocol,
        {"type": "conversation.item.created", "event_id": "e1", "previous_item_id": None, "item": asst},
        {"type": "response.content_part.added", "event_id": "e2", **base, "part": {"type": "output_audio"}},
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": "e3",
            **base,
            "delta": "Hi ",
            "obfuscation": "x",
        },
        {
            "type": "response.done",
            "event_id": "e4",
            "response": {"id": "r1", "status": "completed", "output": [asst]},
        },
        {"type": "rate_limits.updated", "event_id": "e5", "rate_limits": [{"name": "tokens", "limit": 10}]},
    )
    assert [e for e in got if isinstance(e, ev.Error)] == []
    added = [e.item for e in got if isinstance(e, ev.HistoryAdded)]
    assert added[0].id == "a1" and added[0].transcript == "Hi there"
    assert ev.TranscriptDelta("a1", "assistant", "Hi ") in got
    assert [e.type for e in got][-2:] == ["response_done", "raw_server_event"]
    assert protocol.conversation.get("a1").transcript == "Hi there"


def test_off_schema_audio_is_reported_and_still_played_and_recorded() -> None:
    pcm = np.full(2400, 7, dtype="<i2").tobytes()
    recorder = Recorder()
    protocol = opened(recorder=recorder)
    base = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    no_id = {"type": "response.output_audio.delta", **base, "delta": base64.b64encode(pcm).decode()}
    coerced = {
        "type": "response.output_text.delta",
        "event_id": "t",
        **base,
        "content_index": "0",
        "delta": "ok",
    }
    got = feed(protocol, no_id, coerced, t_ms=5.0)
    assert [type(e) for e in got] == [ev.Error, ev.AudioChunk, ev.TranscriptDelta]
    assert got[1].data == pcm and got[2] == ev.TranscriptDelta("a", "assistant", "ok")
    assert protocol.conversation.get("a").audio_ms == 100.0 and protocol.conversation.get("a").text == "ok"
    assert recorder.lines == [
        ("server", "response.output_audio.delta", 5.0),
        ("server", "response.output_text.delta", 5.0),
    ]
    assert recorder.pcm_bytes == len(pcm)  # the off-schema audio is on the output track too


def test_audio_deltas_are_counted_tracked_and_handed_on_undecoded() -> None:
    reply = (np.sin(np.arange(24000) / 10) * 8000).astype("<i2").tobytes()
    tracker = PlaybackTracker(clock=Clock())
    protocol = opened(playback=tracker)
    got = feed(protocol, *audio_turn(reply, "Sure."))
    chunks = [e for e in got if isinstance(e, ev.AudioChunk)]
    assert all(isinstance(c.payload, str) for c in chunks)  # no recorder: nothing decoded yet
    assert b"".join(c.data for c in chunks) == reply
    assert protocol.conversation.get("item_asst2").audio_ms == 1000.0
    state = tracker.state()
    assert state is not None and (state.item_id, state.received_ms) == ("item_asst2", 1000.0)


def test_barge_in_truncates_at_what_was_played_and_the_client_cancels() -> None:
    clock, recorder = Clock(), Recorder()
    config = SessionConfig(turn_detection={"type": "server_vad", "interrupt_response": False})
    protocol = opened(config, playback=PlaybackTracker(clock=clock), recorder=recorder)
    feed(protocol, *audio_turn(np.full(48000, 500, dtype="<i2").tobytes(), "A long answer", end=False))
    assert protocol.conversation.active_response_id == "resp_audio1"
    clock.now = 0.75  # 750 ms played on the tracker's clock
    got = feed(protocol, speech_started())
    assert [type(e) for e in got] == [ev.SpeechStarted] and protocol.barge_in
    cut = protocol.cut_playback(protocol.playback.state())
    assert cut.events == [ev.AudioInterrupted("item_asst2", 0, 750.0)] and cut.played_ms == 750.0
    (truncate,) = cut.send
    assert (truncate["type"], truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == (
        "conversation.item.truncate",
        "item_asst2",
        0,
        750,
    )
    assert recorder.cuts == [750.0]  # the track started at 0 ms: unplayed audio cut at 750 ms
    (cancel,) = protocol.barge_in_cancel()
    assert cancel["type"] == "response.cancel"
    # audio still arriving for the interrupted item is recorded on the dropped track, never played
    late = audio_turn(b"\x01\x00" * 2400, "x", end=False)[-1]
    assert feed(protocol, late, t_ms=900.0) == []
    assert recorder.lines[-1] == ("server", "response.output_audio.delta", 900.0)
    assert protocol.playback.state() is None


def test_the_server_cancels_itself_when_interrupt_response_is_on() -> None:
    protocol = opened(playback=PlaybackTracker(clock=Clock()))  # default: server VAD interrupts
    feed(protocol, *audio_turn(b"\x00\x00" * 24000, "x", end=False))
    feed(protocol, speech_started())
    protocol.cut_playback(protocol.playback.state())
    assert protocol.barge_in_cancel() == []


def test_no_barge_in_once_playback_finished() -> None:
    clock = Clock()
    protocol = opened(playback=PlaybackTracker(clock=clock))
    feed(protocol, *audio_turn(b"\x01\x00" * 2400, "ok"))  # 100 ms
    clock.now = 5.0
    got = feed(protocol, speech_started())
    assert [type(e) for e in got] == [ev.SpeechStarted] and not protocol.barge_in
    assert protocol.cut_playback(protocol.playback.state()) == ([], [], None)


def test_a_players_report_caps_the_cut_and_a_full_report_means_nothing_to_cut() -> None:
    tracker = PlaybackTracker(clock=Clock())
    protocol = opened(playback=tracker)
    feed(protocol, *audio_turn(b"\x01\x00" * 24000, "hello", end=False))  # 1000 ms
    tracker.on_played("item_asst2", 120)
    cut = protocol.cut_playback(tracker.state(), heard_ms=80.0)  # the player stopped at 80 ms
    assert cut.played_ms == 80.0 and cut.send[0]["audio_end_ms"] == 80
    (cancel,) = protocol.interrupt_cancel()  # the response is still active
    assert cancel["type"] == "response.cancel"
    feed(protocol, *audio_turn(b"\x01\x00" * 2400, "again", assistant_id="a2", end=False))
    assert protocol.cut_playback(tracker.state(), heard_ms=5000.0).played_ms is None


def test_g711_sessions_convert_both_ways() -> None:
    config = SessionConfig(input_format="g711_ulaw", output_format="g711_ulaw")
    protocol = opened(config)
    appends = list(protocol.audio_appends(np.zeros(4800, dtype=np.int16), rate=24000))  # 200 ms
    # 8 bytes per ms; the 24 -> 8 kHz resampler holds its last 2 ms until the stream goes on or ends
    assert [len(base64.b64decode(e["audio"])) for e, _ in appends] == [800, 784]
    assert [len(pcm) for _, pcm in appends] == [4800, 4800]  # recorded as PCM16 24 kHz
    (tail,) = protocol.input_tail()  # before a commit
    assert len(base64.b64decode(tail[0]["audio"])) == 16 and tail[1] == b""
    tone = (np.sin(np.arange(800) / 5) * 0.3).astype(np.float32)
    base = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    delta = {
        "type": "response.output_audio.delta",
        "event_id": "e",
        **base,
        "delta": base64.b64encode(ulaw_encode(tone)).decode(),
    }
    feed(protocol, session_created())
    (chunk,) = feed(protocol, delta)
    assert isinstance(chunk, ev.AudioChunk) and len(chunk.data) == 4800  # decoded to PCM16 24 kHz
    assert protocol.conversation.get("a").audio_ms == 100.0


def test_audio_appends_check_their_input_first() -> None:
    protocol = opened()
    with pytest.raises(AudioError, match="rate="):
        protocol.audio_appends(np.zeros(100, dtype=np.float32))
    appends = list(protocol.audio_appends(Audio.from_array(np.zeros(3600, dtype=np.float32), 24000)))
    assert [len(pcm) for _, pcm in appends] == [4800, 2400]  # 100 ms chunks, the rest last
    assert all(e["type"] == "input_audio_buffer.append" for e, _ in appends)


def test_g711_barge_in_truncates_in_played_ms() -> None:
    """§8/§12.7 with G.711: 8 bytes per ms on the wire, truncate at what was played, the client's cancel."""
    clock = Clock()
    config = SessionConfig(
        output_format="g711_ulaw", turn_detection={"type": "server_vad", "interrupt_response": False}
    )
    protocol = opened(config, playback=PlaybackTracker(clock=clock))
    chunk = base64.b64encode(ulaw_encode(np.zeros(800, dtype=np.float32))).decode()
    base = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    deltas = [
        {"type": "response.output_audio.delta", "event_id": f"d{n}", **base, "delta": chunk} for n in range(3)
    ]
    feed(protocol, session_created(), created("r"), *deltas)
    assert protocol.conversation.get("a").audio_ms == 300.0
    clock.now = 0.25
    feed(protocol, speech_started())
    cut = protocol.cut_playback(protocol.playback.state())
    assert cut.events == [ev.AudioInterrupted("a", 0, 250.0)] and cut.send[0]["audio_end_ms"] == 250
    assert [e["type"] for e in protocol.barge_in_cancel()] == ["response.cancel"]


def test_a_callers_stream_at_another_rate_does_not_depend_on_how_it_was_cut() -> None:
    """A 48 kHz mic's 20 ms chunks are one stream: the wire carries the bytes the whole clip gives, with no
    seam at the chunk boundaries (each chunk resampled alone would click every 20 ms)."""
    t = np.arange(48000) / 48000
    mic = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # 1 s at 48 kHz

    def wire(protocol: ClientProtocol, pieces: list[np.ndarray]) -> bytes:
        out = b""
        for piece in pieces:
            out += b"".join(
                base64.b64decode(e["audio"]) for e, _ in protocol.audio_appends(piece, rate=48000)
            )
        return out + b"".join(base64.b64decode(e["audio"]) for e, _ in protocol.input_tail())

    for fmt, per_ms in (("pcm16", 48), ("g711_alaw", 8)):
        whole = wire(opened(SessionConfig(input_format=fmt)), [mic])
        chunked = wire(
            opened(SessionConfig(input_format=fmt)), [mic[i : i + 960] for i in range(0, 48000, 960)]
        )
        assert chunked == whole and len(whole) == 1000 * per_ms
    pcm = np.frombuffer(wire(opened(), [mic[i : i + 960] for i in range(0, 48000, 960)]), "<i2")
    largest_step = 0.3 * 32767 * 2 * np.pi * 440 / 24000  # a 440 Hz sine's steepest sample-to-sample change
    assert np.abs(np.diff(pcm[48:-48].astype(np.float64))).max() < largest_step * 1.05


def test_bad_audio_for_send_audio_names_the_fix() -> None:
    protocol = opened()
    with pytest.raises(AudioError, match="odd number"):
        list(protocol.audio_appends(b"\x00\x01\x02", rate=24000))
    with pytest.raises(AudioError, match="rate=<Hz>"):
        list(protocol.audio_appends(np.zeros(10, np.float32)))
    ((event, pcm),) = protocol.audio_appends(b"\x01\x00" * 240)  # bytes: PCM16 at 24 kHz by default
    assert pcm == b"\x01\x00" * 240 and base64.b64decode(event["audio"]) == pcm


def test_g711_answers_decode_as_one_stream_per_item() -> None:
    """An item's G.711 deltas decode without a click at each boundary, and each keeps its length."""
    protocol = opened(SessionConfig(output_format="g711_alaw"))
    feed(protocol, session_created())
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    base = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    pcm = b""
    for start in range(0, 8000, 160):  # 20 ms deltas
        data = base64.b64encode(alaw_encode(tone[start : start + 160])).decode()
        (chunk,) = feed(
            protocol, {"type": "response.output_audio.delta", "event_id": "e", **base, "delta": data}
        )
        assert len(chunk.data) == 960  # 20 ms at 24 kHz, whatever the resampler holds
        pcm += chunk.data
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)[96:]  # after the 2 ms of delay
    largest_step = 0.3 * 32767 * 2 * np.pi * 440 / 24000
    assert np.abs(np.diff(samples)).max() < largest_step * 1.2  # A-law's own error is small; a seam is not
    assert protocol.conversation.get("a").audio_ms == 1000.0


# --- bad command arguments: one line naming the fix, nothing handed out ----------------------------------

_CLIP = Audio.from_array(np.zeros(2400, dtype=np.float32), 24000)
_USER_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}

BAD_COMMANDS: list[tuple[str, Any, type[Exception], str]] = [
    ("send_audio(path)", lambda p: list(p.audio_appends("/x.wav")), AudioError,
     r"not a path \('/x.wav'\); pass voicelab.read_audio\(path\)"),
    ("send_audio(Path)", lambda p: list(p.audio_appends(Path("a.wav"), 16000)), AudioError,
     r"voicelab.read_audio\(path\)"),
    ("send_audio(Audio, rate=16000)", lambda p: list(p.audio_appends(_CLIP, 16000)), AudioError,
     r"Audio at 24000 Hz and rate=16000.*drop rate=.*Audio.from_array\(audio.samples, 16000\)"),
    ("send_text('')", lambda p: p.send_text(""), ConfigError, r"non-empty str.*create_response\(\)"),
    ("send_text('  ')", lambda p: p.send_text("  \n"), ConfigError, "non-empty str"),
    ("send_text(respond='no')", lambda p: p.send_text("hi", respond="no"), ConfigError,
     "respond='no' must be True or False"),
    ("send_function_output(respond=1)", lambda p: p.send_function_output("c", "x", respond=1), ConfigError,
     "respond=1 must be True or False"),
    ("create_response(bogus=1)", lambda p: p.create_response(bogus=1), ArgumentError,
     "no argument 'bogus'; it takes: audio, conversation, input, instructions, max_output_tokens"),
    ("create_response(instruction=)", lambda p: p.create_response(instruction="x"), ArgumentError,
     "did you mean 'instructions'?"),
    ("max_output_tokens=0", lambda p: p.create_response(max_output_tokens=0), LocalProtocolError,
     "max_output_tokens=0 is not valid; use a whole number from 1 to 4096, or 'inf'"),
    ("max_output_tokens=4097", lambda p: p.create_response(max_output_tokens=4097), LocalProtocolError,
     "from 1 to 4096"),
    ("max_output_tokens=True", lambda p: p.create_response(max_output_tokens=True), LocalProtocolError,
     "from 1 to 4096"),
    ("max_output_tokens='infinite'", lambda p: p.create_response(max_output_tokens="infinite"),
     LocalProtocolError, "or 'inf'"),
    ("function output object()", lambda p: p.send_function_output("c", object()), ConfigError,
     r"output must be JSON-serializable.*got object.*str\(value\)"),
    ("function output call_id=5", lambda p: p.send_function_output(5, "x"), ConfigError,
     "needs the call's call_id, a non-empty str.*got int"),
    ("create_item(5)", lambda p: p.create_item(5), ConfigError, "create_item takes an item dict such as"),
    ("create_item(bogus)", lambda p: p.create_item({"type": "bogus"}), LocalProtocolError,
     "item type 'bogus' is not an item type; use 'message'"),
    ("create_item(mesage)", lambda p: p.create_item({"type": "mesage"}), LocalProtocolError,
     "did you mean 'message'?"),
    ("create_item(role)", lambda p: p.create_item({"type": "message", "role": "x"}), LocalProtocolError,
     "role must be 'user', 'assistant' or 'system', got 'x'"),
    ("create_item(part)", lambda p: p.create_item({**_USER_ITEM, "content": [{"type": "text", "text": "x"}]}),
     LocalProtocolError, r"invalid user message item: content.0.type: .*'input_text'"),
    ("create_item(no call_id)", lambda p: p.create_item({"type": "function_call_output", "output": "x"}),
     LocalProtocolError, "invalid function_call_output item: call_id: Field required"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "message"), [b[1:] for b in BAD_COMMANDS], ids=[b[0] for b in BAD_COMMANDS]
)
def test_a_bad_command_argument_is_one_line_naming_the_fix(
    call: Any, error: type[Exception], message: str
) -> None:
    protocol = opened()
    with pytest.raises(error, match=message) as info:
        call(protocol)
    assert "\n" not in str(info.value) and "Realtime" not in str(info.value).split("openai.types")[0]
    assert not protocol.responding and protocol.outgoing == []


def test_good_command_arguments_still_make_the_same_events() -> None:
    protocol = opened()
    assert len(list(protocol.audio_appends(_CLIP, 24000))) == 1  # the Audio's own rate: fine
    (item,) = protocol.create_item(_USER_ITEM)
    assert item["item"] == _USER_ITEM
    (create,) = protocol.create_response(max_output_tokens="inf", conversation="none")
    assert create["response"] == {"max_output_tokens": "inf", "conversation": "none"}
    (create,) = protocol.create_response(max_output_tokens=4096, instructions="Be brief.")
    assert create["response"]["max_output_tokens"] == 4096
    (output,) = protocol.function_output_item("call_1", {"ok": [1, None]})
    assert output["item"]["output"] == '{"ok": [1, null]}'


def test_a_command_before_the_connection_opens_says_it_was_never_opened() -> None:
    protocol = ClientProtocol(SessionConfig())
    for command in (lambda: protocol.send_text("hi"), lambda: list(protocol.audio_appends(_CLIP))):
        with pytest.raises(SessionError, match=r"never opened; open it first: `async with voicelab.connect"):
            command()
    protocol.connection_open()
    protocol.connection_closed()
    with pytest.raises(SessionError, match="is closed; open a new one"):
        protocol.send_text("hi")


def test_a_recording_writer_takes_the_checked_deltas_by_its_shortcut(tmp_path: Path) -> None:
    """Valid deltas with only their checked fields go to RecordingWriter.record_delta; one with another
    field (a float here, which the one-piece line may not vouch for) goes to record_wire: both written as the
    stdlib encoder writes them, the audio on the output track."""
    from voicelab.recording import _ENCODER, RecordingWriter, load_recording

    writer = RecordingWriter(tmp_path / "r", flush_ms=50)
    calls: list[str] = []
    shortcut, general = writer.record_delta, writer.record_wire
    writer.record_delta = lambda *a, **k: calls.append("delta") or shortcut(*a, **k)  # type: ignore[method-assign]
    writer.record_wire = lambda *a, **k: calls.append("wire") or general(*a, **k)  # type: ignore[method-assign]
    protocol = opened(recorder=writer)
    base = {"event_id": "e", "response_id": "r", "item_id": "i", "output_index": 0, "content_index": 0}
    pcm = bytes(range(256)) * 3
    audio = {"type": "response.output_audio.delta", **base, "delta": base64.b64encode(pcm).decode()}
    text = {"type": "response.output_audio_transcript.delta", **base, "delta": "hé"}
    feed(protocol, audio, text, t_ms=1.25)
    feed(protocol, {**audio, "x": 1e-7}, {**text, "x": 1e-7}, t_ms=2.5)
    assert calls == ["delta", "delta", "wire", "wire"]
    protocol.recorder = None
    writer.close()
    lines = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and "1e-07" in lines[2]
    for line in lines:
        assert line == _ENCODER.encode(json.loads(line))
    assert load_recording(tmp_path / "r").output.to_pcm16() == bytes(60) + pcm * 2  # from 1.25 ms on
