"""Recorded caller turns as clips (voicelab.clips) from real recordings made against the embedded server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import voicelab
from voicelab import clips
from voicelab.audio.io import read_audio
from voicelab.caller import play_turns
from voicelab.demo import caller_turns, returns_desk_agent
from voicelab.errors import ConfigError
from voicelab.recording import input_origin_ms, load_recording


@pytest.fixture(scope="module")
def spoken() -> list[voicelab.Audio]:
    return caller_turns("returns")[:3]


@pytest.fixture(scope="module")
def vad_recording(fast_server, spoken, tmp_path_factory) -> Path:
    """Three caller turns through server VAD with input transcription, sent faster than real time (so the
    input track has gaps where the caller waited for the answers)."""
    folder = tmp_path_factory.mktemp("vad") / "rec"

    async def record() -> None:
        async with voicelab.connect(
            returns_desk_agent(), url=fast_server.url, api_key="sk-local", record_dir=folder
        ) as session:
            await play_turns(session, spoken, realtime=False)

    import asyncio

    asyncio.run(record())
    return folder


def _contains(haystack: voicelab.Audio, needle: voicelab.Audio) -> bool:
    return needle.to_pcm16() in haystack.to_pcm16()


def test_vad_turns_are_cut_at_the_server_vad_positions(vad_recording, spoken, tmp_path) -> None:
    out = clips.save_turns(vad_recording, tmp_path / "turns")
    assert out == tmp_path / "turns"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "voicelab-turns" and manifest["version"] == 1
    assert manifest["rate"] == 24000 and manifest["source"] == str(vad_recording)
    assert [t["file"] for t in manifest["turns"]] == ["turn-001.wav", "turn-002.wav", "turn-003.wav"]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "turn-001.wav",
        "turn-002.wav",
        "turn-003.wav",
    ]
    rec = load_recording(vad_recording)
    started = [e["event"] for e in rec.events if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e["event"] for e in rec.events if e["type"] == "input_audio_buffer.speech_stopped"]
    origin = input_origin_ms(rec.events)
    assert origin is not None
    for entry, start, stop, said in zip(manifest["turns"], started, stopped, spoken, strict=True):
        # the clip spans exactly the server's turn, and holds every sample the caller spoke in it
        assert entry["duration_ms"] == pytest.approx(stop["audio_end_ms"] - start["audio_start_ms"], abs=0.05)
        assert entry["item_id"] == start["item_id"] == stop["item_id"]
        assert entry["end_ms"] - entry["start_ms"] == pytest.approx(entry["duration_ms"], abs=0.05)
        clip = read_audio(out / entry["file"])
        assert clip.rate == 24000
        assert _contains(clip, said)
    # the first turn sits at the first input audio's position + the server's audio_start_ms
    assert manifest["turns"][0]["start_ms"] == pytest.approx(origin + started[0]["audio_start_ms"], abs=0.05)
    transcripts = [t["transcript"] for t in manifest["turns"]]
    assert transcripts[0] == "Hi, I would like to return an order."
    assert all(isinstance(t, str) and t for t in transcripts)


def test_the_session_clock_positions_follow_gaps_in_the_track(vad_recording, tmp_path) -> None:
    """The fast caller waited between turns: the later clips sit on the track where the audio really is."""
    rec = load_recording(vad_recording)
    loaded = clips.load_turns(clips.save_turns(rec, tmp_path / "t"))
    for clip in loaded:
        on_track = rec.input.slice_ms(clip.start_ms, clip.end_ms)
        assert np.array_equal(on_track.to_pcm16(), clip.audio.to_pcm16())
    assert loaded[1].start_ms > loaded[0].end_ms


def test_load_turns_round_trip(vad_recording, tmp_path) -> None:
    folder = clips.save_turns(load_recording(vad_recording), tmp_path / "turns")
    loaded = clips.load_turns(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [c.index for c in loaded] == [0, 1, 2]
    for clip, entry in zip(loaded, manifest["turns"], strict=True):
        assert clip.file == folder / entry["file"]
        assert clip.audio.rate == 24000
        assert clip.audio.duration_ms == pytest.approx(entry["duration_ms"], abs=0.05)
        assert (clip.start_ms, clip.end_ms) == (entry["start_ms"], entry["end_ms"])
        assert clip.transcript == entry["transcript"] and clip.item_id == entry["item_id"]
    assert "turn-001.wav" in repr(loaded[0])


async def test_committed_turns_are_cut_at_the_commits(fast_server, spoken, tmp_path) -> None:
    folder = tmp_path / "rec"
    config = voicelab.SessionConfig(turn_detection=None)
    async with voicelab.connect(
        config, url=fast_server.url, api_key="sk-local", record_dir=folder
    ) as session:
        await session.send_audio(spoken[0], commit=True)
        await session.send_audio(spoken[2])  # discarded by the clear
        await session.clear_input()
        await session.send_audio(spoken[1], commit=True)
        async for event in session:
            if event.type == "history_added" and len(session.history) >= 2:
                break
        live = clips.load_turns(clips.save_turns(session, tmp_path / "live"))  # a live session's recording
    saved = clips.load_turns(clips.save_turns(session, tmp_path / "turns"))
    assert len(saved) == 2
    assert saved[0].audio.to_pcm16() == spoken[0].to_pcm16()
    assert saved[1].audio.to_pcm16() == spoken[1].to_pcm16()
    assert saved[0].transcript is None
    assert all(c.item_id for c in saved)
    assert [c.audio.to_pcm16() for c in live] == [c.audio.to_pcm16() for c in saved]
    unrecorded = voicelab.connect(None, url=fast_server.url, api_key="sk-local", record_dir=False)
    with pytest.raises(ConfigError, match="records nothing"):
        clips.save_turns(unrecorded, tmp_path / "none")


async def test_no_turns_is_a_clear_error(fast_server, tmp_path) -> None:
    folder = tmp_path / "rec"
    async with voicelab.connect(None, url=fast_server.url, api_key="sk-local", record_dir=folder) as session:
        await session.send_text("hello", respond=False)
    with pytest.raises(ConfigError, match="no caller turns"):
        clips.save_turns(folder, tmp_path / "turns")
    assert not (tmp_path / "turns").exists()


def test_target_folder_errors(vad_recording, tmp_path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        clips.save_turns(vad_recording, busy)
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        clips.save_turns(vad_recording, file)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert clips.save_turns(vad_recording, empty) == empty  # an empty folder is fine


def test_load_errors_name_the_file_and_the_fix(vad_recording, tmp_path) -> None:
    folder = clips.save_turns(vad_recording, tmp_path / "turns")
    (folder / "turn-002.wav").unlink()
    with pytest.raises(ConfigError, match=r"turn-002\.wav .*missing; restore the file"):
        clips.load_turns(folder)
    (folder / "turn-002.wav").write_bytes(b"not audio at all")
    with pytest.raises(ConfigError, match=r"turn-002\.wav cannot be read"):
        clips.load_turns(folder)
    (folder / "manifest.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        clips.load_turns(folder)
    with pytest.raises(ConfigError, match="does not exist"):
        clips.load_turns(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match=r"no manifest\.json"):
        clips.load_turns(tmp_path / "plain")


def test_clip_paths_of_the_wrong_kind(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="recording must be a path"):
        clips.save_turns(5, tmp_path / "out")
    with pytest.raises(ConfigError, match=r"is inside .* which is a file"):
        clips.save_turns("/nonexistent", a_file / "out")
    with pytest.raises(ConfigError, match="folder must be a path"):
        clips.load_turns(5)
    with pytest.raises(ConfigError, match="recording must be a path"):
        clips.recorded_turns(None)


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": "voicelab-turns", "version": 1, "rate": 24000, "turns": [{"file": "../x.wav"}]})
    )
    with pytest.raises(ConfigError, match="a name in the folder"):
        clips.load_turns(tmp_path)
