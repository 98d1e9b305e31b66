"""events.jsonl lines: the fast encoder of the high-rate lines writes exactly the stdlib encoder's bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

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
