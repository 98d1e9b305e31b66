from __future__ import annotations

import numpy as np
import pytest

from voicelab.errors import ConfigError
from voicelab.widgets import Microphone


def batch(mic: Microphone, seq: int, samples: int = 960, source: str = "mic") -> None:
    pcm = (np.arange(samples, dtype=np.int16) + seq).astype("<i2").tobytes()
    content = {
        "type": "audio",
        "seq": seq,
        "samples": samples,
        "rate": 24000,
        "source": source,
        "captured_at": 1.0,
    }
    mic._on_custom(mic, content, [memoryview(pcm)])


def test_audio_batches_reach_the_handler_as_bytes_in_order() -> None:
    mic = Microphone()
    got: list[tuple[bytes, dict]] = []
    mic.on_audio(lambda pcm, info: got.append((pcm, info)))
    for seq in (1, 2, 3):
        batch(mic, seq)
    assert [info["seq"] for _, info in got] == [1, 2, 3]
    assert all(isinstance(pcm, bytes) and len(pcm) == 1920 for pcm, _ in got)
    assert np.frombuffer(got[1][0], "<i2")[0] == 2
    assert mic.stats.samples == 3 * 960 and mic.stats.duration_ms == pytest.approx(120.0)
    assert mic.stats.gaps == 0


def test_sequence_gaps_and_duplicates_are_counted() -> None:
    mic = Microphone()
    got: list[int] = []
    mic.on_audio(lambda pcm, info: got.append(info["seq"]))
    for seq in (1, 2, 5, 5, 4, 6):
        batch(mic, seq)
    assert mic.stats.gaps == 2  # 3 and 4 missing when 5 came
    assert mic.stats.duplicates == 2  # the second 5 and the late 4 are dropped
    assert got == [1, 2, 5, 6]


def test_sources_are_counted_apart() -> None:
    mic = Microphone()
    batch(mic, 1, source="mic")
    batch(mic, 2, source="file", samples=480)
    assert mic.stats.by_source == {"mic": 960, "file": 480}


def test_commands_go_to_command_handlers_not_audio() -> None:
    mic = Microphone()
    commands: list[dict] = []
    audio: list[bytes] = []
    mic.on_command(commands.append)
    mic.on_audio(lambda pcm, info: audio.append(pcm))
    mic._on_custom(mic, {"type": "connect"}, [])
    mic._on_custom(mic, {"type": "ptt", "down": True}, [])
    mic._on_custom(mic, "not a dict", [])
    mic._on_custom(mic, {"type": "audio", "seq": 1}, [])  # no buffer: ignored
    assert [c["type"] for c in commands] == ["connect", "ptt"]
    assert audio == []


def test_bad_mode_and_batch_size_are_refused_with_the_fix() -> None:
    mic = Microphone()
    with pytest.raises(ConfigError, match="'open'"):
        mic.mode = "always"
    with pytest.raises(ConfigError, match="20 to 100"):
        mic.batch_ms = 500
    mic.mode = "ptt"
    assert mic.mode == "ptt"


def test_start_and_stop_are_messages_to_the_browser(capture) -> None:
    mic = Microphone()
    sent = capture(mic)
    mic.start()
    mic.stop()
    assert [m[0]["type"] for m in sent.messages] == ["start", "stop"]


def test_the_js_is_a_sibling_file_with_the_shared_audio_context() -> None:
    esm = Microphone._esm
    text = esm if isinstance(esm, str) else str(esm)
    assert 'registerProcessor("voicelab-capture"' in text
    assert "function audioContext()" in text and "getSettings" in text  # the mic context at the track rate
    assert "sampleRate: 24000" not in text  # never force the context's rate (Firefox refuses)
    assert "getUserMedia" in text and 'autoGainControl: model.get("auto_gain")' in text


def test_voice_processing_is_on_by_default_and_can_be_turned_off() -> None:
    mic = Microphone()
    assert mic.processing == {"auto_gain": True, "echo_cancellation": True, "noise_suppression": True}
    assert mic.settle_ms == 0 and "processing off" not in repr(mic)
    mic = Microphone(auto_gain=False, settle_ms=300)
    assert mic.processing["auto_gain"] is False and mic.processing["echo_cancellation"] is True
    assert "processing off=['auto_gain']" in repr(mic) and "settle_ms=300" in repr(mic)
    # the browser reads them from the synced state at getUserMedia
    state = mic.get_state()
    assert state["auto_gain"] is False and state["settle_ms"] == 300


def test_settle_time_out_of_range_is_refused_with_the_fix() -> None:
    mic = Microphone()
    for bad in (-1, 3001, True):
        with pytest.raises(ConfigError, match="0 to 3000 ms"):
            mic.settle_ms = bad
    assert mic.settle_ms == 0
