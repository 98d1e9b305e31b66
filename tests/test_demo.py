"""The main job: `voicelab demo` against the embedded server, end to end (fast pace)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from voicelab.cli import main
from voicelab.demo import caller_turns, readable_csv, run_demo
from voicelab.errors import ConfigError
from voicelab.recording import load_recording


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, pace="fast", realtime=False, quiet=True)


def test_demo_writes_recording_tables_and_figure(demo) -> None:
    for name in ("turns", "history", "tool_calls", "usage", "figure"):
        assert demo.files[name].exists() and demo.files[name].stat().st_size > 0
    rec = load_recording(demo.recording)
    assert rec.input.duration_ms > 5000 and rec.output.duration_ms > 5000
    assert "sk-local" not in (demo.recording / "events.jsonl").read_text()
    assert "sk-local" not in json.dumps(rec.meta)


def test_demo_turns_and_tools(demo) -> None:
    turns = pd.read_csv(demo.files["turns"])
    assert len(turns) == 4  # the four caller lines, each detected by server VAD
    assert (turns["kind"] == "vad").all()
    assert (turns["eos_to_first_audio_ms"] > 0).all()
    calls = pd.read_csv(demo.files["tool_calls"])
    assert list(calls["name"]) == ["lookup_order", "create_return_label"]
    assert calls["error"].isna().all()
    assert demo.summary["user_turns"] == 4 and demo.summary["tool_calls"] == 2


def test_demo_history_has_the_assistant_answers(demo) -> None:
    history = pd.read_csv(demo.files["history"])
    said = " ".join(history.loc[history["role_or_type"] == "assistant", "text"].fillna(""))
    assert "What is your order number?" in said
    assert "The return label is on its way by email." in said
    assert not history["interrupted"].any()


def test_caller_turns_unknown_conversation() -> None:
    with pytest.raises(ConfigError, match="unknown conversation"):
        caller_turns("nope")
    assert len(caller_turns("human")) == 3


def test_cli_demo_fast(tmp_path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path), "--fast", "--conversation", "spelling"]) == 0
    printed = capsys.readouterr().out
    assert "user turns" in printed and (tmp_path / "session.png").exists()


def test_demo_csvs_read_well(demo) -> None:
    calls = pd.read_csv(demo.files["tool_calls"])
    assert [json.loads(a) for a in calls["arguments"]] == [
        {"order_number": "four five six seven"},
        {"delivery": "email"},
    ]
    for line in demo.files["turns"].read_text().splitlines()[1:]:
        for cell in line.split(","):
            assert len(cell.partition(".")[2]) <= 3, line  # no float noise like 22.23199999999997


def test_readable_csv_rounds_floats_and_writes_json() -> None:
    frame = pd.DataFrame({"ms": [22.23199999999997, 1.0], "args": [{"a": 1}, [1, "x"]], "n": [1, 2]})
    out = readable_csv(frame)
    assert list(out["ms"]) == [22.232, 1.0]
    assert list(out["args"]) == ['{"a": 1}', '[1, "x"]']
    assert list(out["n"]) == [1, 2]
    assert frame["ms"][0] == 22.23199999999997  # the input is left alone


def test_cli_demo_summary_counts(tmp_path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path), "--fast", "--conversation", "human"]) == 0
    printed = capsys.readouterr().out
    assert "\n3 user turns, 4 responses, 1 tool call; median end of speech -> first audio: " in printed
    assert "(from the server's end of turn: " in printed
    assert "  handoff: returns_desk -> human" in printed


def test_demo_quiet_prints_only_the_output_paths(tmp_path, capsys) -> None:
    assert main(["demo", "--fast", "--quiet", "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        "recording",
        "turns",
        "history",
        "tool_calls",
        "usage",
        "figure",
    ]
    assert all(Path(line.split(": ", 1)[1]).exists() for line in lines)
