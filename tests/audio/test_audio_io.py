from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicelab.audio.core import Audio
from voicelab.audio.io import read_audio, write_audio
from voicelab.errors import AudioError


def pcm_audio(rate: int = 24000, n: int = 2400) -> Audio:
    rng = np.random.default_rng(7)
    return Audio.from_array(rng.integers(-32768, 32768, n).astype(np.int16), rate)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".WAV"])
def test_write_then_read_is_exact_for_pcm16(tmp_path: Path, suffix: str) -> None:
    audio = pcm_audio()
    path = write_audio(tmp_path / f"a{suffix}", audio)
    back = read_audio(path)
    assert back.rate == 24000
    np.testing.assert_array_equal(back.samples, audio.samples)
    assert back.to_pcm16() == audio.to_pcm16()
    kind = "WAV" if suffix.lower() == ".wav" else "FLAC"
    assert back.conversions == (f"read {kind} PCM_16 at 24000 Hz, 1 channel, from a{suffix}",)


def test_written_wav_is_mono_pcm16(tmp_path: Path) -> None:
    write_audio(tmp_path / "a.wav", pcm_audio(rate=16000))
    info = soundfile.info(str(tmp_path / "a.wav"))
    assert (info.format, info.subtype, info.channels, info.samplerate, info.frames) == (
        "WAV",
        "PCM_16",
        1,
        16000,
        2400,
    )


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    write_audio(tmp_path / "audio.bin", pcm_audio(), format="flac")
    assert soundfile.info(str(tmp_path / "audio.bin")).format == "FLAC"
    assert read_audio(tmp_path / "audio.bin").samples.size == 2400


def test_float_subtype(tmp_path: Path) -> None:
    audio = Audio.from_array(np.array([0.1, -0.2, 0.30001], dtype=np.float32), 8000)
    write_audio(tmp_path / "f.wav", audio, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(tmp_path / "f.wav").samples, audio.samples)


def test_read_keeps_file_rate_and_reports_downmix(tmp_path: Path) -> None:
    stereo = np.stack([np.full(480, 0.5), np.full(480, -0.25)], axis=1)
    soundfile.write(str(tmp_path / "s.wav"), stereo, 48000, subtype="PCM_16")
    audio = read_audio(tmp_path / "s.wav")
    assert audio.rate == 48000
    np.testing.assert_allclose(audio.samples, 0.125, atol=1e-4)
    assert audio.conversions == (
        "read WAV PCM_16 at 48000 Hz, 2 channels, from s.wav",
        "downmixed 2 channels to mono (mean)",
    )
    assert audio.to_realtime().samples.size == 240


def test_read_accepts_str_paths(tmp_path: Path) -> None:
    write_audio(str(tmp_path / "a.wav"), pcm_audio())
    assert read_audio(str(tmp_path / "a.wav")).duration_ms == 100.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist; check the path"):
        read_audio(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        read_audio(tmp_path)
    with pytest.raises(AudioError, match="is a directory"):
        write_audio(tmp_path, pcm_audio())


def test_non_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match=r"cannot read .*notes\.wav.* as audio"):
        read_audio(path)


def test_corrupt_wav(tmp_path: Path) -> None:
    write_audio(tmp_path / "a.wav", pcm_audio())
    data = bytearray((tmp_path / "a.wav").read_bytes())
    data[8:12] = b"XXXX"  # the WAVE tag
    (tmp_path / "bad.wav").write_bytes(bytes(data))
    with pytest.raises(AudioError, match="corrupt"):
        read_audio(tmp_path / "bad.wav")


def test_empty_file_and_empty_audio(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="cannot read"):
        read_audio(tmp_path / "zero.wav")
    soundfile.write(str(tmp_path / "silent.wav"), np.zeros(0, dtype=np.int16), 24000)
    with pytest.raises(AudioError, match="has no samples"):
        read_audio(tmp_path / "silent.wav")
    assert read_audio(tmp_path / "silent.wav", allow_empty=True).samples.size == 0


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="cannot tell the audio format"):
        write_audio(tmp_path / "a.xyz", pcm_audio())
    with pytest.raises(AudioError, match="unknown audio format"):
        write_audio(tmp_path / "a.wav", pcm_audio(), format="NOPE")
    with pytest.raises(AudioError, match="does not exist; create it first"):
        write_audio(tmp_path / "missing" / "a.wav", pcm_audio())
    with pytest.raises(AudioError, match="needs an Audio value"):
        write_audio(tmp_path / "a.wav", np.zeros(10))  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="cannot store subtype"):
        write_audio(tmp_path / "a.flac", pcm_audio(), subtype="FLOAT")


def test_write_audio_arguments_of_the_wrong_kind(tmp_path: Path) -> None:
    audio = Audio.from_array(np.zeros(240, np.float32), 24000)
    with pytest.raises(AudioError, match="path must be a path"):
        write_audio(5, audio)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="format must be a str"):
        write_audio(tmp_path / "x.wav", audio, format=5)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="subtype must be a str"):
        write_audio(tmp_path / "x.wav", audio, subtype=16)  # type: ignore[arg-type]
