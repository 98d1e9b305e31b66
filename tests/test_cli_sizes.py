"""Every size a command takes is bounded (issue 8, item 11): a huge plot or duration is a one-line usage
error, never a MemoryError with a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicelab.cli import main
from voicelab.errors import ConfigError
from voicelab.plots import MAX_FIGURE_PX, new_figure


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_sizes") / "tone.wav"
    t = np.arange(8000) / 16000
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000, "PCM_16")
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--width", "100000", "--height", "100000"], "argument --width: 100000 is outside 100-10000"),
        (["--height", "100000"], "argument --height: 100000 is outside 100-10000"),
        (["--width", "0"], "argument --width: 0 is outside"),
        (["--width", "-5"], "argument --width: -5 is outside"),
        (["--width", "1e9"], "argument --width: '1e9' is not a whole number"),
        (["--silence-duration-ms", "99999999999"], "argument --silence-duration-ms: 99999999999 is too long"),
        (["--prefix-padding-ms", "10000000"], "argument --prefix-padding-ms: 10000000 is too long"),
    ],
)
def test_sizes_out_of_bounds_are_one_line_usage_errors(
    tone_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["plot", str(tone_wav), "-o", str(tmp_path / "o.png"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err, err
    assert not (tmp_path / "o.png").exists()


def test_vad_durations_are_bounded_too(tone_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vad", str(tone_wav), "--silence-duration-ms", str(10**12)]) == 2
    assert "too long" in capsys.readouterr().err


@pytest.mark.parametrize(
    "size",
    [
        {"width_px": MAX_FIGURE_PX + 1},
        {"height_px": 10**9},
        {"dpi": 10**6},
    ],
)
def test_figure_sizes_in_python_are_bounded(size: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="too large; use at most"):
        new_figure(**size)


@pytest.mark.parametrize("rate", [10**9, 768_001, 10**12])
def test_sample_rates_are_bounded(rate: int) -> None:
    from voicelab.audio.core import Audio
    from voicelab.errors import AudioError

    with pytest.raises(AudioError, match="above 768000 Hz"):
        Audio.from_array(np.zeros(100, dtype=np.float32), rate)
    with pytest.raises(AudioError, match="above 768000 Hz"):
        Audio.from_array(np.zeros(100, dtype=np.float32), 24000).resample(rate)
