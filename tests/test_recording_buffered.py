"""Buffered recording (RecordingWriter(flush_ms=...), what a Session uses): the same files, fewer writes,
and a killed process loses at most the last flush_ms of deltas, never a control event."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from voicelab.errors import ConfigError
from voicelab.recording import RecordingWriter, load_recording, read_events


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pcm_ms(ms: int, value: int = 1000) -> bytes:
    return np.full(ms * 24, value, dtype="<i2").tobytes()


def write_call(writer: RecordingWriter, clock: FakeClock, shortcut: bool = False) -> None:
    """A short call: appends with a gap, a reply's deltas, a barge-in cut, control events between.
    `shortcut`: the server deltas through record_delta (a Session's path for its checked deltas)."""
    for i in range(5):
        clock.now += 0.04
        writer.record_wire("client", {"type": "input_audio_buffer.append", "audio": "x"}, pcm=pcm_ms(40, i))
    clock.now += 0.3  # 300 ms without audio: silence in the track
    writer.record_wire("client", {"type": "input_audio_buffer.append", "audio": "x"}, pcm=pcm_ms(40, 9))
    writer.record_wire("server", {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 500})
    for i in range(8):
        clock.now += 0.01
        delta = {"type": "response.output_audio.delta", "delta": "x", "item_id": "item_1"}
        text = {"type": "response.output_audio_transcript.delta", "delta": "w"}
        if shortcut:
            writer.record_delta(delta, writer.t_ms(), pcm_ms(100, 100 + i))
            writer.record_delta(text, writer.t_ms())
        else:
            writer.record_wire("server", delta, pcm=pcm_ms(100, 100 + i))
            writer.record_wire("server", text)
    writer.cut_output(450.0)
    writer.record_wire("server", {"type": "response.done", "response": {"status": "cancelled"}})
    clock.now += 0.02
    writer.record_wire("server", {"type": "response.output_audio.delta", "delta": "x"}, pcm=pcm_ms(100, 7))


@pytest.mark.parametrize("shortcut", [False, True])
def test_a_buffered_recording_has_the_same_files(tmp_path: Path, shortcut: bool) -> None:
    for name, flush_ms in (("plain", 0.0), ("buffered", 50.0)):
        clock = FakeClock()
        writer = RecordingWriter(tmp_path / name, clock=clock, flush_ms=flush_ms)
        write_call(writer, clock, shortcut=shortcut and flush_ms > 0)
        writer.close()
    for file in ("events.jsonl", "input.wav", "output.wav"):
        assert (tmp_path / "buffered" / file).read_bytes() == (tmp_path / "plain" / file).read_bytes()
    assert len(load_recording(tmp_path / "buffered").events) == 25


def test_deltas_wait_at_most_flush_ms_and_control_events_not_at_all(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = RecordingWriter(tmp_path, clock=clock, flush_ms=50.0)
    delta = {"type": "response.output_audio.delta", "delta": "x"}
    writer.record_wire("server", delta, pcm=pcm_ms(100))
    assert read_events(tmp_path) == []  # held back
    assert (tmp_path / "output.wav").stat().st_size == 44
    clock.now += 0.06
    writer.record_wire("server", delta, pcm=pcm_ms(100))  # 60 ms after the last flush: both written
    assert len(read_events(tmp_path)) == 2
    assert (tmp_path / "output.wav").stat().st_size == 44 + 2 * 4800
    writer.record_wire("server", delta, pcm=pcm_ms(100))
    writer.record_wire("server", {"type": "response.done", "response": {}})  # a control event: all of it
    assert [e["type"] for e in read_events(tmp_path)][-2:] == ["response.output_audio.delta", "response.done"]
    assert (tmp_path / "output.wav").stat().st_size == 44 + 3 * 4800
    writer.close()


@pytest.mark.parametrize("shortcut", [False, True])
def test_a_killed_buffered_writer_leaves_a_readable_recording(tmp_path: Path, shortcut: bool) -> None:
    folder = tmp_path / "killed"
    delta = '{"type": "response.output_audio.delta", "delta": "x"}'
    last = (
        f"w.record_delta({delta}, w.t_ms(), pcm)"
        if shortcut
        else f'w.record_wire("server", {delta}, pcm=pcm)'
    )
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np
        from voicelab.recording import RecordingWriter
        w = RecordingWriter({str(folder)!r}, flush_ms=50.0)
        pcm = np.full(2400, 300, dtype="<i2").tobytes()
        for _ in range(3):
            w.record_wire("client", {{"type": "input_audio_buffer.append", "audio": "x"}}, pcm=pcm)
        w.record_wire("server", {{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 300}})
        {last}
        os._exit(9)  # no close(): the last delta was still buffered
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr.decode()
    rec = load_recording(folder)
    assert [e["type"] for e in rec.events] == ["input_audio_buffer.append"] * 3 + [
        "input_audio_buffer.speech_stopped"
    ]
    assert rec.input.duration_ms >= 300.0  # the three appends (after the few ms the process took)
    assert np.allclose(rec.input.samples[-2400:], 300 / 32768)
    assert rec.output.duration_ms == 0.0  # the delta still buffered is lost, and only it


@pytest.mark.parametrize("bad", [-1, 5000, float("nan"), "50", True])
def test_flush_ms_is_checked(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match="flush_ms"):
        RecordingWriter(tmp_path, flush_ms=bad)  # type: ignore[arg-type]
