from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from voicelab.widgets.tail import BIN_MS, RecordingTail


def wav_header() -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16)
        + b"data"
        + struct.pack("<I", 0)
    )


def make_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "events.jsonl").write_text("")
    for name in ("input.wav", "output.wav"):
        (folder / name).write_bytes(wav_header())
    return folder


def append_event(folder: Path, record: dict, newline: bool = True) -> None:
    with open(folder / "events.jsonl", "a") as f:
        f.write(json.dumps(record) + ("\n" if newline else ""))


def append_pcm(folder: Path, name: str, samples: np.ndarray) -> None:
    with open(folder / name, "ab") as f:
        f.write(samples.astype("<i2").tobytes())


def test_events_are_read_once_and_only_when_complete(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    tail = RecordingTail(folder)
    append_event(folder, {"t_ms": 1.0, "dir": "client", "type": "session.update", "event": {}})
    with open(folder / "events.jsonl", "a") as f:
        f.write('{"t_ms": 2.0, "dir": "server", "ty')
    first = tail.poll()
    assert [e["type"] for e in first.events] == ["session.update"]
    with open(folder / "events.jsonl", "a") as f:
        f.write('pe": "session.updated", "event": {}}\nnot json\n')
    second = tail.poll()
    assert [e["type"] for e in second.events] == ["session.updated"]
    assert tail.poll().events == []


def test_spans_from_server_vad_responses_and_tools(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    tail = RecordingTail(folder)
    append_event(
        folder,
        {
            "t_ms": 100.0,
            "dir": "client",
            "type": "input_audio_buffer.append",
            "event": {"audio": {"$audio": {"track": "input", "start_ms": 100.0, "duration_ms": 40}}},
        },
    )
    append_event(
        folder,
        {
            "t_ms": 900.0,
            "dir": "server",
            "type": "input_audio_buffer.speech_started",
            "event": {"item_id": "u1", "audio_start_ms": 300},
        },
    )
    update = tail.poll()
    assert [(s.kind, s.start_ms, s.end_ms) for s in update.spans] == [("turn", 400.0, None)]
    append_event(
        folder,
        {
            "t_ms": 2000.0,
            "dir": "server",
            "type": "input_audio_buffer.speech_stopped",
            "event": {"item_id": "u1", "audio_end_ms": 1800},
        },
    )
    append_event(
        folder,
        {"t_ms": 2010.0, "dir": "server", "type": "response.created", "event": {"response": {"id": "r1"}}},
    )
    append_event(
        folder,
        {"t_ms": 2020.0, "dir": "app", "type": "tool_start", "event": {"call_id": "c1", "name": "lookup"}},
    )
    append_event(
        folder,
        {"t_ms": 2050.0, "dir": "app", "type": "tool_call", "event": {"call_id": "c1", "name": "lookup"}},
    )
    append_event(
        folder,
        {
            "t_ms": 2500.0,
            "dir": "server",
            "type": "response.done",
            "event": {"response": {"id": "r1", "status": "cancelled"}},
        },
    )
    append_event(
        folder, {"t_ms": 2400.0, "dir": "app", "type": "audio_interrupted", "event": {"item_id": "a1"}}
    )
    update = tail.poll()
    spans = {(s.kind, s.key): s for s in update.spans}
    assert spans["turn", "u1"].end_ms == 1900.0
    assert (spans["response", "r1"].start_ms, spans["response", "r1"].end_ms) == (2010.0, 2500.0)
    assert spans["response", "r1"].label == "response (cancelled)"
    assert (spans["tool", "c1"].start_ms, spans["tool", "c1"].end_ms, spans["tool", "c1"].label) == (
        2020.0,
        2050.0,
        "lookup",
    )
    assert update.marks == [{"kind": "audio_interrupted", "t_ms": 2400.0, "label": "interrupted"}]


def test_envelopes_are_incremental_and_redone_after_a_cut(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    tail = RecordingTail(folder)
    per_bin = 24000 * BIN_MS // 1000
    ramp = np.concatenate([np.full(per_bin, 1000), np.full(per_bin, -16000), np.full(per_bin // 2, 32767)])
    append_pcm(folder, "output.wav", ramp)
    update = tail.poll()
    (env,) = update.envelopes
    assert (env.track, env.start, env.mins.size) == ("output", 0, 3)
    assert list(env.maxs[:2]) == [3, -63] and env.maxs[2] == 127
    append_pcm(folder, "output.wav", np.full(per_bin // 2, -32768))
    (env,) = tail.poll().envelopes
    assert (env.start, env.mins.size, env.mins[0], env.maxs[0]) == (2, 1, -127, 127)  # the half bin, redone
    with open(folder / "output.wav", "r+b") as f:  # an interruption cuts the track back into bin 1
        f.truncate(44 + per_bin * 2 + 100)
    (env,) = tail.poll().envelopes
    assert (env.start, env.mins.size) == (1, 1)
    assert tail.poll().envelopes == []


def test_a_missing_folder_gives_empty_updates(tmp_path: Path) -> None:
    tail = RecordingTail(tmp_path / "nothing")
    update = tail.poll()
    assert not update
