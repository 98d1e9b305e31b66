"""The caller's turns of a recording as clips on disk: `turn-001.wav`, ... and `manifest.json`.

`save_turns(recording, folder)` cuts each user turn out of the recording's input track (`input.wav`):

- server VAD turns (and idle timeouts) at `speech_started.audio_start_ms` / `speech_stopped.audio_end_ms`
  (so a clip holds the VAD's prefix padding and the silence that ended the turn, as the server heard it);
- turns committed by the client (no server VAD) from the previous commit (or clear) to the commit.

Those `audio_*_ms` count the audio appended to the input buffer since the session started. The input track
has that audio on the session clock, starting at `voicelab.recording.input_origin_ms`, with silence where the
client paused sending (a caller that sends faster than real time, then waits). Each append is recorded with
its place on the track, so a buffer position maps exactly onto the track (and onto the session clock) even
across such gaps; when the audio was sent without gaps the mapping is `input_origin_ms + audio_ms`.

Folder format (`FORMAT`, version 1), mono PCM16 24 kHz WAV clips and:

    manifest.json = {"format": "voicelab-turns", "version": 1, "rate": 24000, "source": "<recording folder>",
                     "turns": [{"file": "turn-001.wav", "start_ms", "end_ms" (session clock),
                                "duration_ms", "item_id", "transcript"}]}

`transcript` is the input transcription of the turn's item when the session asked for one, else null.
`load_turns(folder)` reads it back as `TurnClip` values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicelab.audio.core import REALTIME_RATE, Audio
from voicelab.checks import checked, output_folder, path_arg
from voicelab.errors import AudioError, ConfigError
from voicelab.recording import Recording, input_origin_ms, load_recording

FORMAT = "voicelab-turns"
VERSION = 1
MANIFEST = "manifest.json"

__all__ = [
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "RecordedTurn",
    "TurnClip",
    "load_turns",
    "read_manifest",
    "recorded_turns",
    "save_turns",
]


@dataclass(frozen=True)
class TurnClip:
    """One caller turn: its clip file and audio, where it sat on the recording's session clock (ms), and
    the input transcription of it (None when the session had no transcription)."""

    index: int
    file: Path
    audio: Audio
    start_ms: float
    end_ms: float
    transcript: str | None = None
    item_id: str | None = None

    @property
    def duration_ms(self) -> float:
        return self.audio.duration_ms

    def __repr__(self) -> str:
        text = "" if self.transcript is None else f", transcript={self.transcript!r}"
        return (
            f"TurnClip(index={self.index}, file={self.file.name!r}, start_ms={self.start_ms:.0f}, "
            f"end_ms={self.end_ms:.0f}, duration_ms={self.duration_ms:.0f}{text})"
        )


@dataclass(frozen=True)
class _Span:
    """A user turn in input-buffer milliseconds (the server's clock of appended audio)."""

    buffer_start_ms: float
    buffer_end_ms: float
    item_id: str | None


class _BufferMap:
    """Buffer milliseconds -> input-track milliseconds, from the recorded appends' `$audio` refs."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.pieces: list[tuple[float, float, float]] = []  # (buffer_start, track_start, duration)
        origin = input_origin_ms(events)
        buffer_ms = 0.0
        for line in events:
            if line.get("dir") != "client" or line.get("type") != "input_audio_buffer.append":
                continue
            ref = (line.get("event") or {}).get("audio")
            audio = ref.get("$audio") if isinstance(ref, dict) else None
            if not isinstance(audio, dict):
                continue
            duration = float(audio.get("duration_ms") or 0.0)
            track = float(audio.get("start_ms", origin or 0.0))
            self.pieces.append((buffer_ms, track, duration))
            buffer_ms += duration
        self.total_ms = buffer_ms

    def track_ms(self, buffer_ms: float) -> float:
        """Where a buffer position sits on the input track (= the session clock)."""
        if not self.pieces:
            return buffer_ms
        for start, track, duration in self.pieces:
            if buffer_ms < start + duration:
                return track + max(0.0, buffer_ms - start)
        start, track, duration = self.pieces[-1]
        return track + (buffer_ms - start)

    def cut(self, pcm: bytes, start_ms: float, end_ms: float) -> bytes:
        """The PCM16 bytes of buffer [start_ms, end_ms), gathered from the track pieces."""
        out = bytearray()
        for start, track, duration in self.pieces:
            lo, hi = max(start, start_ms), min(start + duration, end_ms)
            if hi <= lo:
                continue
            a = _byte(track + lo - start)
            b = a + _byte(hi - lo)
            out += pcm[a:b]
        return bytes(out)


def _load(recording: Any) -> Recording:
    """A Recording from a Recording, a recording folder, or a (live or closed) Session."""
    if isinstance(recording, Recording):
        return recording
    if isinstance(recording, type):
        raise ConfigError(
            f"pass a Recording, a recording folder or a Session, not the class {recording.__name__}"
        )
    if hasattr(recording, "recording_path") and not isinstance(recording, str | os.PathLike):
        path = recording.recording_path
        if path is None:
            raise ConfigError("this session records nothing (record_dir=False); connect with a record_dir")
        return load_recording(path)
    return load_recording(recording)


def _byte(ms: float) -> int:
    return round(ms * REALTIME_RATE / 1000.0) * 2


@dataclass(frozen=True)
class RecordedTurn:
    """A caller turn found in a recording (not yet saved): its audio, where it sat on the session clock
    (ms), the conversation item the server made of it, and its input transcription (or None)."""

    start_ms: float
    end_ms: float
    audio: Audio
    item_id: str | None
    transcript: str | None


@checked
def recorded_turns(recording: Recording | str | os.PathLike[str]) -> list[RecordedTurn]:
    """The caller's turns of a recording (a Recording or a recording folder), in order; empty when the
    recording holds no user audio turn."""
    rec = _load(recording)
    spans = _spans(rec.events)
    if not spans:
        return []
    mapping = _BufferMap(rec.events)
    pcm = rec.input.to_realtime().to_pcm16()
    transcripts = _transcripts(rec.events)
    out = []
    for span in spans:
        data = mapping.cut(pcm, span.buffer_start_ms, span.buffer_end_ms)
        if not data:
            continue
        audio = Audio.from_pcm16(data, REALTIME_RATE)
        start = mapping.track_ms(span.buffer_start_ms)
        end = (
            start + audio.duration_ms
            if span.buffer_end_ms >= mapping.total_ms
            else mapping.track_ms(span.buffer_end_ms)
        )
        transcript = transcripts.get(span.item_id or "")
        out.append(RecordedTurn(round(start, 3), round(end, 3), audio, span.item_id, transcript))
    return out


def _spans(events: list[dict[str, Any]]) -> list[_Span]:
    """User turns in buffer ms: server VAD (speech_started/stopped), idle timeouts, client commits.

    Client events are recorded when sent and server events when received, so a client's commits and clears
    are read on their own (they cut the buffer in the order sent) and matched in order with the server's
    `committed` events that no VAD turn explains (an empty commit is refused by the server: skipped)."""
    commits: list[tuple[float, float]] = []  # the buffer span of each client commit, in order sent
    appended = boundary = 0.0
    for line in events:
        if line.get("dir") != "client":
            continue
        kind, ev = line.get("type"), line.get("event") or {}
        if kind == "input_audio_buffer.append":
            ref = ev.get("audio")
            audio = ref.get("$audio") if isinstance(ref, dict) else None
            if isinstance(audio, dict):
                appended += float(audio.get("duration_ms") or 0.0)
        elif kind == "input_audio_buffer.commit":
            if appended > boundary:
                commits.append((boundary, appended))
            boundary = appended
        elif kind == "input_audio_buffer.clear":
            boundary = appended
    spans: list[_Span] = []
    known: set[str] = set()
    started: dict[str, float] = {}
    for line in events:
        if line.get("dir") != "server":
            continue
        kind, ev = line.get("type"), line.get("event") or {}
        item_id = ev.get("item_id")
        if kind == "input_audio_buffer.speech_started" and isinstance(item_id, str):
            started[item_id] = float(ev.get("audio_start_ms") or 0.0)
        elif kind == "input_audio_buffer.speech_stopped" and isinstance(item_id, str):
            end = float(ev.get("audio_end_ms") or 0.0)
            spans.append(_Span(started.pop(item_id, end), end, item_id))
            known.add(item_id)
        elif kind == "input_audio_buffer.timeout_triggered" and isinstance(item_id, str):
            start, end = float(ev.get("audio_start_ms") or 0.0), float(ev.get("audio_end_ms") or 0.0)
            spans.append(_Span(start, end, item_id))
            known.add(item_id)
        elif kind == "input_audio_buffer.committed" and commits:
            if isinstance(item_id, str) and item_id in known:
                continue
            start, end = commits.pop(0)
            spans.append(_Span(start, end, item_id if isinstance(item_id, str) else None))
    return spans


def _transcripts(events: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in events:
        if line.get("dir") != "server":
            continue
        if line.get("type") == "conversation.item.input_audio_transcription.completed":
            ev = line.get("event") or {}
            if isinstance(ev.get("item_id"), str) and isinstance(ev.get("transcript"), str):
                out[ev["item_id"]] = ev["transcript"]
    return out


@checked
def save_turns(recording: Recording | str | os.PathLike[str] | Any, folder: str | os.PathLike[str]) -> Path:
    """Write the caller's turns of `recording` (a Recording, a recording folder, or a Session) to `folder` as
    `turn-001.wav`, ... and `manifest.json`; returns the folder. `folder` must not exist or be empty."""
    out = output_folder(folder, "folder", example="'my-caller'", where="save_turns")
    rec = _load(recording)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; pass a new folder to save the turns into.")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty; pass a new folder (or delete what is in it) to save the turns into."
        )
    turns = recorded_turns(rec)
    if not turns:
        raise ConfigError(
            f"the recording {rec.path} has no caller turns (no server VAD turn and no committed input "
            "audio); record a session in which the caller speaks, with server VAD or session.commit()."
        )
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    from voicelab.audio.io import write_audio

    for number, turn in enumerate(turns, 1):
        name = f"turn-{number:03d}.wav"
        write_audio(out / name, turn.audio)
        entries.append(
            {
                "file": name,
                "start_ms": turn.start_ms,
                "end_ms": turn.end_ms,
                "duration_ms": round(turn.audio.duration_ms, 3),
                "item_id": turn.item_id,
                "transcript": turn.transcript,
            }
        )
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "rate": REALTIME_RATE,
        "source": str(rec.path),
        "turns": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


@checked
def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked manifest of a turns folder."""
    path = path_arg(folder, "folder", example="'my-caller'", where="read_manifest")
    if not path.exists():
        raise ConfigError(f"turns folder {path} does not exist; pass a folder written by save_turns.")
    if not path.is_dir():
        raise ConfigError(f"{path} is a file; pass the folder save_turns wrote (it holds {MANIFEST}).")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ConfigError(
            f"{path} has no {MANIFEST}; pass a folder written by save_turns (or lab.save_turns)."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{manifest_path} is not valid JSON ({exc}); restore it or save the turns again."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(f"{manifest_path} is not a voicelab turns manifest (format must be {FORMAT!r}).")
    if manifest.get("version") != VERSION:
        raise ConfigError(
            f"{manifest_path} has version {manifest.get('version')!r}; this voicelab reads version "
            f"{VERSION}: save the turns again with this version."
        )
    turns = manifest.get("turns")
    if not isinstance(turns, list) or not all(
        isinstance(t, dict)
        and isinstance(t.get("file"), str)
        and t["file"] not in ("", ".", "..")
        and "/" not in t["file"]
        and "\\" not in t["file"]
        for t in turns
    ):
        raise ConfigError(
            f"{manifest_path}: 'turns' must be a list of objects with a 'file' (a name in the folder); save "
            "the turns again."
        )
    return manifest


@checked
def load_turns(folder: str | os.PathLike[str]) -> list[TurnClip]:
    """The clips of a folder written by `save_turns`, in order, as 24 kHz `Audio`."""
    path = path_arg(folder, "folder", example="'my-caller'", where="load_turns")
    manifest = read_manifest(path)
    from voicelab.audio.io import read_audio

    clips = []
    for index, entry in enumerate(manifest["turns"]):
        file = path / entry["file"]
        if not file.is_file():
            raise ConfigError(
                f"turn clip {file} listed in {path / MANIFEST} is missing; restore the file or remove "
                "its entry from the manifest."
            )
        try:
            audio = read_audio(file)
        except AudioError as exc:
            raise ConfigError(
                f"turn clip {file} cannot be read ({exc}); replace it with a WAV file or remove its entry "
                f"from {MANIFEST}."
            ) from exc
        if audio.rate != REALTIME_RATE:
            audio = audio.to_realtime()
        transcript = entry.get("transcript")
        item_id = entry.get("item_id")
        clips.append(
            TurnClip(
                index=index,
                file=file,
                audio=audio,
                start_ms=float(entry.get("start_ms") or 0.0),
                end_ms=float(entry.get("end_ms") or 0.0),
                transcript=transcript if isinstance(transcript, str) else None,
                item_id=item_id if isinstance(item_id, str) else None,
            )
        )
    return clips
