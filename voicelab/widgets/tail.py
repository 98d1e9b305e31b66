"""Follow a recording folder while a session writes it: new event lines, waveform envelopes, timeline spans.

The cockpit's event log and live timeline read the recording, not the session, so they show exactly what
is on disk (both wire directions and app events, audio already elided) for any architecture that writes
the recording format. Each `poll()` reads only what was appended since the last one; `events.jsonl` lines
are taken only once complete, and a WAV track that shrank (output cut at an interruption) is re-read from
the cut.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RATE = 24000
HEADER = 44
BIN_MS = 25  # one envelope bin: 600 samples at 24 kHz
_BIN_BYTES = RATE * BIN_MS // 1000 * 2


@dataclass
class Envelope:
    """Min/max per `BIN_MS` bin of one track, as int8 (sample * 127), from bin `start` on."""

    track: str
    start: int
    mins: np.ndarray
    maxs: np.ndarray


@dataclass
class Span:
    """A timeline span on the session clock (end None while open)."""

    kind: str  # "turn" | "response" | "tool"
    key: str
    start_ms: float
    end_ms: float | None = None
    label: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "start_ms": round(self.start_ms, 1),
            "end_ms": None if self.end_ms is None else round(self.end_ms, 1),
            "label": self.label,
        }


@dataclass
class TailUpdate:
    events: list[dict[str, Any]] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)  # new or changed spans
    marks: list[dict[str, Any]] = field(default_factory=list)  # interruptions, guardrail trips

    def __bool__(self) -> bool:
        return bool(self.events or self.envelopes or self.spans or self.marks)


class _TrackTail:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.done_bytes = 0  # PCM bytes turned into complete bins
        self.partial = b""

    def poll(self) -> Envelope | None:
        try:
            size = self.path.stat().st_size - HEADER
        except FileNotFoundError:
            return None
        size -= size % 2
        have = self.done_bytes + len(self.partial)
        if size < have:  # the track was cut: redo from the bin that holds the cut
            self.done_bytes = (max(size, 0) // _BIN_BYTES) * _BIN_BYTES
            self.partial = b""
            have = self.done_bytes
        if size <= have:
            return None
        with open(self.path, "rb") as f:
            f.seek(HEADER + have)
            data = self.partial + f.read(size - have)
        start_bin = self.done_bytes // _BIN_BYTES
        full = len(data) - len(data) % _BIN_BYTES
        # a partial last bin is shown too and redone when it fills
        self.done_bytes += full
        self.partial = data[full:]
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
        n_bins = -(-samples.size // (_BIN_BYTES // 2))
        if n_bins == 0:
            return None
        padded = np.zeros(n_bins * (_BIN_BYTES // 2), dtype=np.int16)
        padded[: samples.size] = samples
        frames = padded.reshape(n_bins, -1)
        mins = (frames.min(axis=1).astype(np.int32) * 127 // 32768).astype(np.int8)
        maxs = (frames.max(axis=1).astype(np.int32) * 127 // 32767).astype(np.int8)
        return Envelope(self.name, start_bin, mins, maxs)


class RecordingTail:
    """Reads what a session appended to its recording folder since the last poll."""

    def __init__(self, folder: str | Path, *, max_line: int = 1 << 20) -> None:
        self.folder = Path(folder)
        self._offset = 0
        self._rest = b""
        self._max_line = max_line
        self._tracks = [
            _TrackTail(self.folder / "input.wav", "input"),
            _TrackTail(self.folder / "output.wav", "output"),
        ]
        self.input_origin_ms: float | None = None
        self._spans: dict[str, Span] = {}
        self._turn_start: dict[str, float] = {}
        self.lines_read = 0

    @property
    def spans(self) -> list[Span]:
        return list(self._spans.values())

    def poll(self) -> TailUpdate:
        update = TailUpdate()
        update.events = self._read_events()
        changed: dict[str, Span] = {}
        for record in update.events:
            for span in self._absorb(record, update):
                changed[span.kind + span.key] = span
        update.spans = list(changed.values())
        for track in self._tracks:
            envelope = track.poll()
            if envelope is not None:
                update.envelopes.append(envelope)
        return update

    def _read_events(self) -> list[dict[str, Any]]:
        path = self.folder / "events.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self._offset += len(chunk)
        data = self._rest + chunk
        lines = data.split(b"\n")
        self._rest = lines.pop()  # incomplete (or empty) last line
        if len(self._rest) > self._max_line:
            self._rest = b""  # a line this long is not ours to show
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                out.append(record)
        self.lines_read += len(out)
        return out

    def _absorb(self, record: dict[str, Any], update: TailUpdate) -> list[Span]:
        kind = record.get("type")
        direction = record.get("dir")
        raw = record.get("event")
        event: dict[str, Any] = raw if isinstance(raw, dict) else {}
        t = float(record.get("t_ms") or 0.0)
        if direction == "client" and kind == "input_audio_buffer.append" and self.input_origin_ms is None:
            ref = event.get("audio")
            if isinstance(ref, dict) and isinstance(ref.get("$audio"), dict):
                self.input_origin_ms = float(ref["$audio"].get("start_ms", t))
            else:
                self.input_origin_ms = t
            return []
        if direction == "server":
            origin = self.input_origin_ms or 0.0
            if kind == "input_audio_buffer.speech_started":
                key = str(event.get("item_id", ""))
                span = Span("turn", key, origin + float(event.get("audio_start_ms", 0)), None, "speech")
                self._spans["turn" + key] = span
                return [span]
            if kind == "input_audio_buffer.speech_stopped":
                key = str(event.get("item_id", ""))
                span = self._spans.get("turn" + key) or Span("turn", key, t, None, "speech")
                span.end_ms = origin + float(event.get("audio_end_ms", 0))
                self._spans["turn" + key] = span
                return [span]
            if kind == "response.created":
                key = str((event.get("response") or {}).get("id", ""))
                span = Span("response", key, t, None, "response")
                self._spans["response" + key] = span
                return [span]
            if kind == "response.done":
                response = event.get("response") or {}
                key = str(response.get("id", ""))
                span = self._spans.get("response" + key) or Span("response", key, t, None, "response")
                span.end_ms = t
                status = response.get("status")
                if status and status != "completed":
                    span.label = f"response ({status})"
                self._spans["response" + key] = span
                return [span]
            return []
        if direction == "app":
            if kind == "tool_start":
                key = str(event.get("call_id", ""))
                span = Span("tool", key, t, None, str(event.get("name", "tool")))
                self._spans["tool" + key] = span
                return [span]
            if kind == "tool_call":
                key = str(event.get("call_id", ""))
                started = event.get("started_ms")
                span = self._spans.get("tool" + key) or Span(
                    "tool", key, float(started) if started is not None else t, None, ""
                )
                span.label = str(event.get("name", "tool")) + (" (error)" if event.get("error") else "")
                span.end_ms = t
                self._spans["tool" + key] = span
                return [span]
            if kind in ("audio_interrupted", "guardrail_tripped", "handoff"):
                label = {
                    "audio_interrupted": "interrupted",
                    "guardrail_tripped": f"guardrail {event.get('guardrail', '')}".strip(),
                    "handoff": f"handoff to {event.get('to_agent', '')}",
                }[kind]
                update.marks.append({"kind": kind, "t_ms": round(t, 1), "label": label})
        return []


__all__ = ["BIN_MS", "Envelope", "RecordingTail", "Span", "TailUpdate"]
