"""Bad input to any `voicelab` command: exit status 2 and one line naming the problem and the fix."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicelab.cli import main


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli_errors") / "tone.wav"
    t = np.arange(8000) / 16000
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000, "PCM_16")
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["vad", "{wav}", "--threshold", "2"], "voicelab vad: error: argument --threshold: 2 is outside 0-1"),
        (["vad", "{wav}", "--threshold", "abc"], "argument --threshold: 'abc' is not a number"),
        (["vad", "{wav}", "--silence-duration-ms", "-5"], "argument --silence-duration-ms: -5 is negative"),
        (
            ["plot", "{wav}", "--prefix-padding-ms", "1.5"],
            "argument --prefix-padding-ms: '1.5' is not a whole",
        ),
        (["serve", "--port", "99999"], "voicelab serve: error: argument --port: 99999 is not a port number"),
        (["serve", "--port", "-3"], "argument --port: -3 is not a port number; give 0-65535"),
        (["demo", "--conversation", "nope"], "argument --conversation: invalid choice: 'nope'"),
        (["nosuch"], "voicelab: error: argument COMMAND: invalid choice: 'nosuch'"),
        ([], "voicelab: error: the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line_with_the_help_hint(
    argv: list[str], expected: str, tone_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.replace("{wav}", str(tone_wav)) for arg in argv]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith(expected) or expected in line, line
    assert line.endswith("--help'")


def test_plot_output_in_an_unwritable_place(
    tone_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    target = not_a_folder / "out.png"  # its "folder" exists but is a file: savefig fails with an OSError
    assert main(["plot", str(tone_wav), "--engine", "energy", "-o", str(target)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"voicelab plot: error: cannot write {str(target)!r} (")
    assert line.endswith("pass -o a path in a folder you can write")


def test_any_os_error_of_a_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import voicelab.commands.vad as vad_command

    def denied(args: argparse.Namespace) -> int:
        raise PermissionError(13, "Permission denied", "/secret/call.wav")

    monkeypatch.setattr(vad_command, "run", denied)
    assert main(["vad", "/secret/call.wav"]) == 2
    assert one_error_line(capsys) == (
        "voicelab vad: error: cannot use '/secret/call.wav': Permission denied; "
        "check the path and its permissions"
    )


SCRIPTS = {
    "bad_regex.yaml": ('rules:\n  - match: "order (?P<n>[0-9"\n    say: "hi"\n', "line 2: rule 1: bad regex"),
    "unknown_key.yaml": (
        'rules:\n  - match: "hello"\n    say: "hi"\n    sayy: "typo"\n',
        "unknown key 'sayy'. Allowed keys: call, examples, instructions, match, say.",
    ),
    "no_say.yaml": ('rules:\n  - match: "hello"\nfallback: "x"\n', "the rule has neither 'say' nor 'call'"),
    "broken.yaml": ('rules: [ - match: "x"\n  say: : :\n', "line 1, column 10: invalid YAML"),
    "missing.yaml": (None, "is neither a file nor a bundled script"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_serve_with_a_broken_script(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = SCRIPTS[name]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    assert main(["serve", "--script", str(path)]) == 2
    line = one_error_line(capsys)
    assert line.startswith("voicelab serve: error: ") and expected in line, line


def test_serve_on_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    line = one_error_line(capsys)
    assert f"could not listen on 127.0.0.1:{port}" in line and "address already in use" in line
    assert "Pick another port" in line


@pytest.mark.parametrize("command", [[], ["demo"], ["serve"], ["vad"], ["plot"]])
def test_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: voicelab {' '.join(command)}".rstrip())


def test_version_and_a_folder_given_as_the_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("voicelab ")
    assert main(["lab", str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a notebook" in err and err.count("\n") == 1
