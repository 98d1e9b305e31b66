from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicelab import cli
from voicelab.audio.core import Audio
from voicelab.audio.io import write_audio
from voicelab.commands import plot as plot_command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def plot_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run cli.main with only this command registered, so these tests do not depend on the others."""
    monkeypatch.setattr(cli, "COMMANDS", ("plot",))


@pytest.fixture
def bursts(tmp_path: Path) -> Path:
    """1 s silence, 1 s tone, 1.5 s silence, 0.5 s tone, 1 s silence at 16 kHz."""
    rate = 16000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    data = np.concatenate([np.zeros(rate), tone, np.zeros(rate * 3 // 2), tone[: rate // 2], np.zeros(rate)])
    return write_audio(tmp_path / "bursts.wav", Audio.from_array(data.astype(np.float32), rate))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_parser_options() -> None:
    parser = argparse.ArgumentParser()
    plot_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            *("plot", "a.wav", "-o", "b.png", "--engine", "energy", "--threshold", "0.3"),
            *("--prefix-padding-ms", "100", "--silence-duration-ms", "200"),
        ]
    )
    assert (args.path, args.output, args.engine, args.threshold) == ("a.wav", "b.png", "energy", 0.3)
    assert (args.prefix_padding_ms, args.silence_duration_ms) == (100, 200)
    defaults = parser.parse_args(["plot", "a.wav"])
    assert (
        defaults.engine,
        defaults.threshold,
        defaults.prefix_padding_ms,
        defaults.silence_duration_ms,
    ) == (
        "silero",
        0.5,
        300,
        500,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["plot", "a.wav", "--engine", "nope"])


def test_plot_writes_a_png(
    plot_only: None, bursts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.png"
    code = cli.main(
        [
            *("plot", str(bursts), "-o", str(out), "--engine", "energy", "--prefix-padding-ms", "0"),
            *("--silence-duration-ms", "300", "--width", "800", "--height", "300"),
        ]
    )
    assert code == 0
    assert png_size(out) == (800, 300)
    assert capsys.readouterr().out.strip() == f"wrote {out}: 2 turn(s), 5.0 s, energy VAD"


def test_plot_default_output_and_svg(plot_only: None, bursts: Path, tmp_path: Path) -> None:
    assert cli.main(["plot", str(bursts), "--engine", "energy"]) == 0
    assert png_size(bursts.with_suffix(".png")) == (1600, 600)
    assert cli.main(["plot", str(bursts), "--engine", "energy", "-o", str(tmp_path / "p.svg")]) == 0
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "1.5"], "threshold"),
        (["-o", "out.gif"], "name the output .png, .svg or .pdf"),
        (["-o", "missing/out.png"], "does not exist; create it first"),
    ],
)
def test_bad_options_give_one_line_errors(
    plot_only: None,
    bursts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plot", str(bursts), "--engine", "energy", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voicelab plot: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_missing_and_corrupt_inputs(
    plot_only: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plot", str(tmp_path / "none.wav"), "--engine", "energy"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    assert cli.main(["plot", str(tmp_path / "junk.wav"), "--engine", "energy"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "junk.png").exists()


def test_plot_as_a_real_command(bursts: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.png"
    result = subprocess.run(
        [sys.executable, "-m", "voicelab", "plot", str(bursts), "-o", str(out), "--engine", "energy"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: ")
    assert png_size(out) == (1600, 600)


def test_plot_a_recording_folder(tmp_path) -> None:
    from voicelab.demo import run_demo

    demo = run_demo(tmp_path / "demo", pace="fast", realtime=False, quiet=True)
    out = tmp_path / "session.png"
    assert cli.main(["plot", str(demo.recording), "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_plot_a_folder_that_is_not_a_recording(tmp_path, capsys) -> None:
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "not a voicelab recording" in capsys.readouterr().err
