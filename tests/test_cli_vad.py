"""`voicelab vad`: JSON schema and exact values on a synthetic WAV, readable table, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicelab.cli import main


@pytest.fixture(scope="module")
def bursts_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 kHz PCM16: silence 1 s, tone 1 s, silence 1 s, tone 0.5 s, silence 1 s."""
    rate = 16000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    zeros = np.zeros(rate)
    path = tmp_path_factory.mktemp("vad") / "bursts.wav"
    soundfile.write(path, np.concatenate([zeros, tone, zeros, tone[: rate // 2], zeros]), rate, "PCM_16")
    return path


EXPECTED_TURNS = [
    {"start_ms": 700, "end_ms": 2500, "speech_start_ms": 1000, "speech_end_ms": 2000},
    {"start_ms": 2700, "end_ms": 4000, "speech_start_ms": 3000, "speech_end_ms": 3500},
]


def test_json_has_exact_schema_and_values(bursts_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vad", str(bursts_wav), "--engine", "energy", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    report = json.loads(out)
    assert report == {"engine": "energy", "rate": 16000, "duration_ms": 4500.0, "turns": EXPECTED_TURNS}


def test_settings_change_the_turns(bursts_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["vad", str(bursts_wav), "--engine", "energy", "--json"]
    assert main([*argv, "--prefix-padding-ms", "0", "--silence-duration-ms", "1200"]) == 0
    turns = json.loads(capsys.readouterr().out)["turns"]
    assert turns == [{"start_ms": 1000, "end_ms": 4500, "speech_start_ms": 1000, "speech_end_ms": 3500}]


def test_table_lists_the_turns(bursts_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vad", str(bursts_wav), "--engine", "energy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "engine energy" in lines[0]
    assert lines[1].split() == ["turn", "start_ms", "end_ms", "speech_start_ms", "speech_end_ms"]
    assert lines[2].split() == ["1", "700", "2500", "1000", "2000"]
    assert lines[3].split() == ["2", "2700", "4000", "3000", "3500"]
    assert lines[4] == "2 turns"


def test_silero_default_on_speech(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voicelab.speech import synthesize

    speech = synthesize("Could you check my order status please?").samples
    silence = np.zeros(12000, dtype=np.float32)
    path = tmp_path / "speech.wav"
    soundfile.write(path, np.concatenate([silence, speech, silence, silence]), 24000, "PCM_16")
    assert main(["vad", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == "silero"
    assert report["rate"] == 24000
    assert len(report["turns"]) == 1
    turn = report["turns"][0]
    assert 400 <= turn["speech_start_ms"] <= 700
    assert turn["start_ms"] == turn["speech_start_ms"] - 300
    assert turn["end_ms"] == turn["speech_end_ms"] + 500


@pytest.mark.parametrize(
    ("make", "extra", "match"),
    [
        (lambda p: p / "missing.wav", [], "does not exist"),
        (lambda p: (p / "notes.wav").write_text("not audio") and p / "notes.wav", [], "cannot read"),
        (None, ["--threshold", "1.5"], "threshold"),
        (None, ["--silence-duration-ms", "-1"], "--silence-duration-ms: -1 is negative"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    tmp_path: Path, bursts_wav: Path, capsys: pytest.CaptureFixture[str], make, extra, match
) -> None:
    path = make(tmp_path) if make else bursts_wav
    assert main(["vad", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("voicelab vad: error:")
    assert match in err
    assert "Traceback" not in err


def test_unknown_engine_is_rejected(bursts_wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vad", str(bursts_wav), "--engine", "torch"]) == 2
    assert "invalid choice: 'torch'" in capsys.readouterr().err


def test_subprocess_json(bursts_wav: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voicelab", "vad", str(bursts_wav), "--engine", "energy", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["turns"] == EXPECTED_TURNS


def test_no_refine_offset_reports_later_or_equal_ends(tmp_path, capsys) -> None:
    """Without the offset refinement the speech ends come where Silero's probability falls: never earlier."""
    from voicelab.audio.io import write_audio
    from voicelab.speech.corpus import CONVERSATIONS, make_conversation

    labelled = make_conversation(CONVERSATIONS["human"], snr_db=20, seed=3)
    path = write_audio(tmp_path / "human.wav", labelled.audio)
    results = []
    for extra in ([], ["--no-refine-offset"]):
        assert main(["vad", str(path), "--json", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    refined, raw = results
    assert len(refined["turns"]) == len(raw["turns"]) == 3
    for a, b in zip(refined["turns"], raw["turns"], strict=True):
        assert a["speech_start_ms"] == b["speech_start_ms"]
        assert a["speech_end_ms"] <= b["speech_end_ms"]
    assert any(
        a["speech_end_ms"] < b["speech_end_ms"] for a, b in zip(refined["turns"], raw["turns"], strict=True)
    )
