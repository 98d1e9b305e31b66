"""Recording folder: events.jsonl, tracks on one clock, crash safety, loading errors."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from voicelab.errors import ConfigError
from voicelab.events import AudioChunk, ResponseDone
from voicelab.recording import RecordingWriter, load_recording


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pcm_ms(ms: int, value: int = 1000) -> bytes:
    return np.full(ms * 24, value, dtype="<i2").tobytes()


def test_events_and_audio_refs(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = RecordingWriter(tmp_path / "rec", clock=clock)
    writer.write_meta({"voicelab": "0.1.0", "model": "gpt-realtime"})
    clock.now += 0.5  # t = 500 ms
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm_ms(100)).decode()}
    recorded = writer.record_wire("client", append)
    assert recorded["audio"] == {"$audio": {"track": "input", "start_ms": 500.0, "duration_ms": 100.0}}
    # sent faster than real time: the next chunk goes right after the first
    recorded = writer.record_wire("client", append)
    assert recorded["audio"]["$audio"]["start_ms"] == 600.0
    clock.now += 0.5  # t = 1000 ms
    delta = {
        "type": "response.output_audio.delta",
        "item_id": "a",
        "delta": base64.b64encode(pcm_ms(200, 7)).decode(),
    }
    writer.record_wire("server", delta)
    writer.record_app(ResponseDone("resp_1", "completed", None, {"total_tokens": 3}))
    writer.record_app(AudioChunk("a", 0, "r", b"\x00\x00"))  # not recorded: duplicates the wire delta
    writer.close()

    rec = load_recording(tmp_path / "rec")
    assert rec.meta["model"] == "gpt-realtime"
    assert [(e["dir"], e["type"]) for e in rec.events] == [
        ("client", "input_audio_buffer.append"),
        ("client", "input_audio_buffer.append"),
        ("server", "response.output_audio.delta"),
        ("app", "response_done"),
    ]
    assert rec.events[0]["t_ms"] == 500.0
    assert rec.events[2]["event"]["delta"] == {
        "$audio": {"track": "output", "start_ms": 1000.0, "duration_ms": 200.0}
    }
    assert rec.events[3]["event"]["usage"] == {"total_tokens": 3}
    assert rec.input.rate == 24000
    assert rec.input.duration_ms == 700.0
    assert np.all(rec.input.samples[: 500 * 24] == 0)  # silence before the first chunk
    assert np.allclose(rec.input.samples[500 * 24 :], 1000 / 32768)
    assert rec.output.duration_ms == 1200.0
    assert np.allclose(rec.output.samples[1000 * 24 :], 7 / 32768)
    assert "Recording(" in repr(rec)


def test_cut_output_drops_unplayed_audio(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = RecordingWriter(tmp_path, clock=clock)
    writer.record_wire("server", {"type": "response.output_audio.delta", "delta": "x"}, pcm=pcm_ms(1000))
    writer.cut_output(250.0)
    writer.record_wire("server", {"type": "response.output_audio.delta", "delta": "x"}, pcm=pcm_ms(100, 5))
    writer.close()
    rec = load_recording(tmp_path)
    assert rec.output.duration_ms == 350.0
    assert np.allclose(rec.output.samples[250 * 24 :], 5 / 32768)


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    RecordingWriter(tmp_path).close()
    with pytest.raises(ConfigError, match="already holds a recording"):
        RecordingWriter(tmp_path)


def test_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_recording(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not a voicelab recording"):
        load_recording(tmp_path)


def test_killed_process_leaves_a_readable_recording(tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np
        from voicelab.recording import RecordingWriter
        w = RecordingWriter({str(folder)!r})
        w.write_meta({{"model": "m"}})
        pcm = np.full(2400, 300, dtype="<i2").tobytes()
        for _ in range(3):
            w.record_wire("client", {{"type": "input_audio_buffer.append", "audio": "x"}}, pcm=pcm)
            w.record_wire("server", {{"type": "response.output_audio.delta", "delta": "x"}}, pcm=pcm)
        w._events.write('{{"t_ms": 1, "dir": "ser')  # a line cut in the middle
        w._events.flush()
        os._exit(9)  # no close(): WAV headers keep their placeholder sizes
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 9, result.stderr.decode()
    header = (folder / "input.wav").read_bytes()[:44]
    assert header[40:44] == b"\x00\x00\x00\x00"  # sizes never patched
    rec = load_recording(folder)
    assert len(rec.events) == 6
    assert rec.input.duration_ms >= 300.0
    assert rec.output.duration_ms >= 300.0
    assert np.allclose(rec.input.samples[-2400:], 300 / 32768)


def test_closed_wav_is_standard(tmp_path: Path) -> None:
    import soundfile as sf

    writer = RecordingWriter(tmp_path)
    writer.record_wire("client", {"type": "input_audio_buffer.append", "audio": "x"}, pcm=pcm_ms(40), t_ms=0)
    writer.close()
    data, rate = sf.read(tmp_path / "input.wav", dtype="int16")
    assert rate == 24000 and data.shape == (960,) and data[0] == 1000
    assert json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])["t_ms"] == 0


def test_gap_then_audio_refs_and_samples(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = RecordingWriter(tmp_path, clock=clock)
    first = writer.record_wire(
        "server", {"type": "response.output_audio.delta", "delta": "x"}, pcm=pcm_ms(100)
    )
    clock.now += 0.5  # 500 ms later: 400 ms of silence, then the audio
    second = writer.record_wire(
        "server", {"type": "response.output_audio.delta", "delta": "x"}, pcm=pcm_ms(100, 5) + b"\x01"
    )
    writer.close()
    assert first["delta"]["$audio"] == {"track": "output", "start_ms": 0.0, "duration_ms": 100.0}
    assert second["delta"]["$audio"] == {"track": "output", "start_ms": 500.0, "duration_ms": 100.0}
    samples = load_recording(tmp_path).output.samples
    assert samples.size == 600 * 24
    assert np.all(samples[100 * 24 : 500 * 24] == 0) and np.allclose(samples[500 * 24 :], 5 / 32768)


@pytest.mark.parametrize("value", [5, None, "", b"rec"])
def test_load_recording_of_something_that_is_no_path(value) -> None:
    with pytest.raises(ConfigError, match=r"recording .*path"):
        load_recording(value)


def test_a_recording_made_by_hand_or_damaged_is_named(tmp_path: Path) -> None:
    from voicelab.recording import Recording

    with pytest.raises(ConfigError, match="Recording meta must be a dict"):
        Recording(tmp_path, [], [], None, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Recording input must be an Audio"):
        Recording(tmp_path, {}, [], 5, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="path must be a path"):
        Recording(5, {}, [], None, None)  # type: ignore[arg-type]
    (tmp_path / "events.jsonl").write_text('{"t_ms": 0, "dir": "app", "type": "x", "event": {}}\n')
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="holds a JSON list, not an object"):
        load_recording(tmp_path)
