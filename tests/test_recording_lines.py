"""events.jsonl lines: the fast encoder of the high-rate lines writes exactly the stdlib encoder's bytes."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import numpy as np
import pytest

from voicelab.recording import _ENCODER, BUFFERED_TYPES, RecordingWriter, encode_line, read_events

EDGE_VALUES = [
    1e-5, -4.8e-05, 1e-4, 0.1, 1e16, 1.5e300, 5e-324, float("nan"), float("inf"), -float("inf"), 0.0, -0.0,
    2**63 - 1, 2**70, -(2**64), True, None, "é", "\x7f", "\u2028", "\x00", "tab\t", "\"q\"", "\\", "e5 1e5",
    "null", {1: 2}, (1, 2), [], {}, "😀",
]  # fmt: skip


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
def test_edge_values_encode_like_the_stdlib(value: object) -> None:
    record = {
        "t_ms": 12.5,
        "dir": "server",
        "type": "response.output_audio_transcript.delta",
        "event": {"v": value},
    }
    assert encode_line(record) == _ENCODER.encode(record) + "\n"


def test_random_records_encode_like_the_stdlib() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        record = {
            "t_ms": round(rng.random() * 10 ** rng.randint(-6, 9), 3),
            "x": rng.random() * 10 ** rng.randint(-30, 30) * rng.choice([1, -1]),
            "n": rng.randint(-(2**70), 2**70),
            "s": "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 8))),
        }
        assert encode_line(record) == _ENCODER.encode(record) + "\n"


def test_a_recorded_stream_has_the_stdlib_bytes(tmp_path: Path) -> None:
    clock = iter(i / 1000 for i in range(10**6))
    writer = RecordingWriter(tmp_path / "r", clock=lambda: next(clock), flush_ms=50)
    for i in range(50):
        base = {"event_id": f"event_{i}", "response_id": "resp_1", "item_id": "item_1", "output_index": 0}
        writer.record_wire("server", {"type": "response.output_audio.delta", **base, "delta": "AAAA" * 100})
        writer.record_wire(
            "server", {"type": "response.output_audio_transcript.delta", **base, "delta": f"wörd{i} "}
        )
        writer.record_wire("client", {"type": "input_audio_buffer.append", "audio": "AQID" * 50})
    writer.record_wire("server", {"type": "response.done", "response": {"id": "resp_1", "x": 1e-7}})
    writer.close()
    lines = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 151 and {json.loads(line)["type"] for line in lines[:-1]} <= BUFFERED_TYPES
    for line in lines:
        assert line == _ENCODER.encode(json.loads(line))  # what the stdlib writer wrote before
    assert len(read_events(tmp_path / "r")) == 151


def test_delta_lines_with_hex_ids_take_the_fast_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random ids ("item_1e4f...") hold a digit before an 'e': not a number, so no fallback to the stdlib."""
    from voicelab import recording

    class Refuse:
        def encode(self, record: object) -> str:
            raise AssertionError("the stdlib encoder was used")

    event = {
        "type": "response.output_audio.delta", "event_id": "event_8e3f1a", "response_id": "resp_1e9d",
        "item_id": "item_5e2a", "output_index": 0, "content_index": 0,
        "delta": {"$audio": {"track": "output", "start_ms": 1234.5, "duration_ms": 100.0}},
    }  # fmt: skip
    line = {"t_ms": 1.5, "dir": "server", "type": event["type"], "event": event}
    expected = _ENCODER.encode(line) + "\n"
    monkeypatch.setattr(recording, "_ENCODER", Refuse())
    assert recording.encode_line(line) == expected


def test_buffered_audio_survives_partial_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The buffered track hands its chunks to os.writev; a short write goes on where it stopped."""
    import os

    from voicelab.recording import load_recording

    real = os.writev

    def short(fd: int, buffers: list) -> int:  # at most 777 bytes per call, cut mid-buffer
        data = b"".join(bytes(b) for b in buffers)[:777]
        return real(fd, [data])

    monkeypatch.setattr(os, "writev", short)
    clock = iter(i / 1000 for i in range(10**6))
    writer = RecordingWriter(tmp_path / "r", clock=lambda: next(clock), flush_ms=50)
    chunks = [bytes([i]) * 4800 for i in range(1, 30)]  # 100 ms each: written back to back
    for chunk in chunks:
        delta = {
            "type": "response.output_audio.delta",
            "item_id": "i",
            "delta": base64.b64encode(chunk).decode(),
        }
        writer.record_wire("server", delta)
    writer.close()
    pcm = load_recording(tmp_path / "r").output.to_pcm16()
    assert pcm.lstrip(b"\0") == b"".join(chunks)  # after the silence before the first delta


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
@pytest.mark.parametrize("t_ms", [12.5, 0.0, 1e-5, 0.0005, 2.0005, 1.1e9, 3e16, float("nan")])
def test_hot_lines_are_the_stdlib_bytes(tmp_path: Path, value: object, t_ms: float) -> None:
    """Delta lines built around orjson's encoding of the event (the writer's hot path) are exactly what the
    stdlib encoder writes, whatever the event holds and whatever the time."""
    writer = RecordingWriter(tmp_path / "r", flush_ms=50)
    event = {
        "type": "response.output_audio_transcript.delta",
        "item_id": "item_1e4f",
        "delta": "x",
        "v": value,
    }
    writer.record_wire("server", event, t_ms=t_ms)
    writer.close()
    (line,) = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    expected = {"t_ms": round(t_ms, 3), "dir": "server", "type": event["type"], "event": event}
    assert line == _ENCODER.encode(expected)


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
@pytest.mark.parametrize("t_ms", [12.5, 0.0, 1e-5, 123456.7891])
def test_hot_audio_lines_are_the_stdlib_bytes(tmp_path: Path, value: object, t_ms: float) -> None:
    """The same for audio deltas, whose audio becomes a `$audio` ref on the output track."""
    writer = RecordingWriter(tmp_path / "r", flush_ms=50)
    event = {"type": "response.output_audio.delta", "item_id": "i", "delta": "AAAA" * 12, "v": value}
    recorded = writer.record_wire("server", event, t_ms=t_ms)
    writer.close()
    (line,) = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ref = recorded["delta"]["$audio"]
    assert ref["track"] == "output" and ref["duration_ms"] == 36 / 48
    expected = {"t_ms": round(t_ms, 3), "dir": "server", "type": event["type"], "event": recorded}
    assert line == _ENCODER.encode(expected)


def test_hot_lines_keep_the_audio_where_the_general_path_puts_it(tmp_path: Path) -> None:
    """The writer's one-piece path for plain deltas places audio and writes lines as the general path does
    (an event with a nested value takes the general path): same refs, same bytes."""
    folders = []
    for nested in (False, True):
        rng = random.Random(3)  # the same audio for both
        clock = iter(i / 7919 for i in range(10**6))
        writer = RecordingWriter(tmp_path / f"r{nested}", clock=lambda c=clock: next(c), flush_ms=50)
        for i in range(200):
            extra = {"x": {"n": i}} if nested else {}
            pcm = rng.randbytes(2 * rng.randint(1, 2400))
            writer.record_wire(
                "server",
                {
                    "type": "response.output_audio.delta",
                    "item_id": "a",
                    "delta": base64.b64encode(pcm).decode(),
                    **extra,
                },
            )
            writer.record_wire(
                "client",
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode(), **extra},
            )
        writer.close()
        folders.append(tmp_path / f"r{nested}")
    plain, general = (read_events(folder) for folder in folders)
    for a, b in zip(plain, general, strict=True):
        b["event"].pop("x", None)
        assert a == b
    for track in ("input.wav", "output.wav"):
        assert (folders[0] / track).read_bytes() == (folders[1] / track).read_bytes()


def _near_ties(rng: random.Random, count: int, top: int = 10**9) -> list[float]:
    """Times right around the halfway points between thousandths, where rounding is delicate."""
    import math

    out = []
    for _ in range(count):
        tie = (rng.randint(0, top) + 0.5) / 1000
        for _ in range(rng.randint(0, 3)):
            tie = math.nextafter(tie, rng.choice([0.0, math.inf]))
        out.append(tie + rng.choice([0.0, 1e-9, -1e-9, 1e-7, -1e-7, 4e-7, -4e-7]))
    return out


def test_round_ms_is_round_to_thousandths() -> None:
    """The writer's fast rounding of times is `round(t, 3)`: the same float (so the same text) everywhere."""
    from voicelab.recording import _round_ms

    rng = random.Random(11)
    times = [rng.random() * 10 ** rng.randint(-7, 14) for _ in range(300_000)]
    times += [rng.randint(0, 10**7) / rng.choice([1, 8, 1000, 7919]) for _ in range(100_000)]
    times += _near_ties(rng, 100_000)
    times += [
        0.0,
        -0.0,
        -1.5,
        1e-4,
        0.0005,
        0.0015,
        2.0**40 / 1000,
        2.0**40,
        1e300,
        float("inf"),
        -float("inf"),
    ]
    for t in times:
        assert repr(_round_ms(t)) == repr(round(t, 3)), t
    assert repr(_round_ms(float("nan"))) == "nan"


def test_start_ms_is_round_of_the_track_position() -> None:
    """A track position in ms, from its byte count by integer arithmetic: `round(bytes / 48, 3)` exactly."""
    from voicelab.recording import _start_ms

    rng = random.Random(5)
    counts = list(range(0, 2_000_000, 2))  # every even count up to ~42 s
    counts += [2 * rng.randint(0, 2**40) for _ in range(200_000)]
    counts += [rng.randint(0, 2**42) for _ in range(50_000)]  # odd and beyond the bound: round itself
    for count in counts:
        assert repr(_start_ms(count)) == repr(round(count / 48.0, 3)), count


@pytest.mark.parametrize("tie_times", [False, True])
def test_record_delta_writes_what_record_wire_writes(tmp_path: Path, tie_times: bool) -> None:
    """record_delta (the Session's path for its checked deltas) writes the same lines and the same audio as
    an unbuffered writer's record_wire (the general path, line by line through the stdlib-checked encoders),
    whatever the times and the text, and returns the same recorded events."""
    rng = random.Random(17)
    times = sorted(
        _near_ties(rng, 300, top=10**7)
        if tie_times
        else [rng.random() * 10 ** rng.randint(-6, 10) for _ in range(300)] + [0.0, 3e16]
    )
    texts = ["word ", "wörd", "\x7f", "\u2028", 'tab\t"q"', "😀", "\ud800", "e5 1e5", ""]
    returned: list[list[dict[str, object]]] = [[], []]
    for shortcut in (False, True):
        flush_ms = 50 if shortcut else 0  # unbuffered, record_wire never takes the one-piece path
        writer = RecordingWriter(tmp_path / f"r{shortcut}", clock=lambda: 0.0, flush_ms=flush_ms)
        audio_rng = random.Random(23)  # the same audio in both
        for i, t in enumerate(times):
            base = {
                "event_id": f"event_{i}e3", "response_id": "resp_1", "item_id": f"item_{i // 50}",
                "output_index": 0, "content_index": 2**62 if i % 7 == 0 else 0,
            }  # fmt: skip
            pcm = audio_rng.randbytes(2 * audio_rng.randint(0, 1200) + (i % 5 == 0))
            audio = {"type": "response.output_audio.delta", **base, "delta": base64.b64encode(pcm).decode()}
            text = {"type": "response.output_audio_transcript.delta", **base, "delta": texts[i % len(texts)]}
            pairs = [(audio, pcm), (text, None)] if t < 1e5 else [(text, None)]  # no hours of silence
            for event, data in pairs:
                if shortcut:
                    recorded = writer.record_delta(event, t, data)
                else:
                    recorded = writer.record_wire("server", event, pcm=data, t_ms=t)
                returned[shortcut].append(recorded)
        writer.record_wire("server", {"type": "response.done", "response": {}}, t_ms=times[-1])
        writer.close()
    assert returned[0] == returned[1]
    for name in ("events.jsonl", "output.wav", "input.wav"):
        assert (tmp_path / "rFalse" / name).read_bytes() == (tmp_path / "rTrue" / name).read_bytes()
    lines = (tmp_path / "rTrue" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        assert line == _ENCODER.encode(json.loads(line))
    written = [json.loads(line)["t_ms"] for line in lines[:-1]]
    assert written == [round(t, 3) for t in times for _ in range(2 if t < 1e5 else 1)]


def test_record_delta_after_close_or_unbuffered_is_record_wire(tmp_path: Path) -> None:
    """An unbuffered writer writes a delta at once; a closed one records nothing (as record_wire)."""
    writer = RecordingWriter(tmp_path / "r")
    event = {"type": "response.output_audio_transcript.delta", "item_id": "i", "delta": "hi"}
    assert writer.record_delta(event, 5.0) == event
    assert [line["t_ms"] for line in read_events(tmp_path / "r")] == [5.0]  # on disk without a flush
    writer.close()
    writer.record_delta(event, 6.0)
    assert len(read_events(tmp_path / "r")) == 1


def test_delta_lines_round_times_like_the_stdlib_writer(tmp_path: Path) -> None:
    """The one-piece path's rounding of times, at many times near halfway between thousandths."""
    rng = random.Random(29)
    times = _near_ties(rng, 20_000) + [rng.random() * 10 ** rng.randint(-6, 12) for _ in range(5_000)]
    writer = RecordingWriter(tmp_path / "r", clock=lambda: 0.0, flush_ms=50)
    event = {"type": "response.output_text.delta", "item_id": "i", "delta": "w"}
    for t in times:
        writer.record_delta(event, t)
    writer.close()
    lines = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    for t, line in zip(times, lines, strict=True):
        record = {"t_ms": round(t, 3), "dir": "server", "type": event["type"], "event": event}
        assert line == _ENCODER.encode(record)


def test_orjson_writes_the_one_piece_floats_as_repr() -> None:
    """The one-piece line leaves its floats to orjson: times k / 1000 (0 < k < 2**40), track positions and
    durations in whole samples; for all of them orjson writes what repr (the stdlib encoder) writes."""
    import orjson

    rng = random.Random(31)
    thousandths = [rng.randint(0, 2**40) for _ in range(100_000)] + list(range(20_000))
    counts = [2 * rng.randint(0, 2**35) for _ in range(50_000)] + list(range(0, 40_000, 2))
    for value in [k / 1000 for k in thousandths] + [n / 48.0 for n in counts]:
        assert orjson.dumps(value) == repr(value).encode(), value


TIMES = [5, 0, np.float64(1.0005), np.float64(0.0), np.float32(2.5), np.float64(12.25)]


@pytest.mark.parametrize("t_ms", TIMES, ids=repr)
@pytest.mark.parametrize("through", ["record_wire", "record_delta"])
def test_int_and_numpy_times_are_written_as_the_stdlib_writes_round_of_them(
    tmp_path: Path, t_ms: object, through: str
) -> None:
    """A time that is no Python float (an int, a numpy float) is written as the stdlib encoder writes
    round(t_ms, 3): valid JSON, never a numpy repr."""
    writer = RecordingWriter(tmp_path / "r", flush_ms=50)
    event = {"type": "response.output_audio_transcript.delta", "item_id": "i", "delta": "x"}
    if through == "record_wire":
        writer.record_wire("server", event, t_ms=t_ms)  # type: ignore[arg-type]
    else:
        writer.record_delta(event, t_ms)  # type: ignore[arg-type]
    writer.close()
    (line,) = (tmp_path / "r" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    rounded = round(t_ms, 3)  # type: ignore[call-overload]
    assert line == _ENCODER.encode({"t_ms": rounded, "dir": "server", "type": event["type"], "event": event})
    json.loads(line)
