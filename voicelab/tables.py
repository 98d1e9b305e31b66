"""Recordings -> pandas tables: history, turns (latency), tool calls, guardrail trips, usage, comparisons.

Every function takes a `voicelab.Recording` (anything with `.events` and `.meta`), a path to a recording
folder (or to its `events.jsonl`), or a live `Session` (anything with `.recording` or `.recording_path`). Only
`meta.json` and `events.jsonl` are read; the audio tracks are not needed. A partly written last line (a killed
process, a live session) is skipped. Times are on the session clock: the `t_ms` of the recorded events.
Strings use pandas' nullable `string` dtype, counts `Int64`/`int64`, times `float64` (NaN when unknown). An
empty recording gives empty frames with the same columns and dtypes.

history(rec): one row per conversation item, in conversation order.
    item_id (string), previous_item_id (string; as reported by the server, else the item before it),
    role_or_type (string: "user" | "assistant" | "system" | "function_call" | "function_call_output" | other
    item types), agent (string: the agent active when the item appeared: meta["agent"], then each `handoff`
    app event's `to_agent`), text (string: text, audio transcript, the input transcription of user audio,
    `name(arguments)` of a function call, the output of a function call output), audio_ms (float64: user audio
    from the server-VAD span audio_end_ms - audio_start_ms or the manually committed buffer, assistant audio
    from the output audio deltas; 0.0 for items without audio), status (string; "deleted" for deleted items),
    interrupted (bool: its response was cancelled, or its audio was truncated or interrupted), truncated_ms
    (float64: audio_end_ms of the truncation, else NaN), start_ms (float64: the first event about the item,
    speech_started for server-VAD user turns), end_ms (float64: the last event of the item's own lifecycle;
    input transcription, which runs asynchronously, does not count).

turns(rec): one row per user turn (server-VAD, manual commit, idle timeout, or a user text message).
    turn (int64, from 0), item_id (string), kind (string: "vad" | "manual" | "timeout" | "text"),
    speech_start_ms / speech_stop_ms (float64: t_ms of speech_started / speech_stopped),
    audio_start_ms / audio_end_ms (float64: the server's input-buffer clock from those events),
    committed_ms (float64: t_ms of input_audio_buffer.committed; for text turns, of the user item's
    conversation.item.added), response_id (string: the first response created in the turn),
    response_created_ms, first_audio_ms (first response.output_audio.delta), first_transcript_ms (first
    output transcript or text delta), response_done_ms (the turn's last response.done) (all float64),
    status (string: the status of the turn's last response), eos_to_first_audio_ms and
    eos_to_first_transcript_ms (float64: from the end of the turn as the server decided it, i.e.
    speech_stopped, or the commit for manual and text turns), speech_end_ms (float64: where the caller's
    speech ended on the session clock, for server_vad turns: the first input audio's position +
    audio_end_ms - silence_duration_ms), speech_end_to_first_audio_ms (float64: the silence the caller
    hears, from the end of their speech to the first audio delta; both NaN when the input audio was sent
    faster than real time, since the audio clock then runs ahead of the session clock), transcription_ms,
    text_model_ms, synthesis_ms (float64: the chained architecture's split of the latency, from its
    `pipeline_stage` app events: end of speech to transcript, the text model's requests up to its first text
    or call for every response before the first audio, the first sentence to its first audio byte; NaN for
    Realtime (speech to speech) sessions, where one model does all three), tool_ms (float64: time spent in
    tool calls started in the turn), interrupted (bool: a response of the turn was cancelled or its audio
    truncated/interrupted).
    A turn runs from its first event to the next turn's first event; responses created in that window
    belong to it.

tool_calls(rec): one row per tool call, from the `tool_call` app events (or, when there are none, from the
    function_call items and the client's function_call_output items).
    call_id (string), name (string), arguments (object: a dict; {"$raw": text} when not a JSON object),
    output (string; JSON text when the output was not a string), stub_kind (string), approval (string),
    started_ms (float64: session clock; the `tool_start` app event's t_ms, else the `tool_call` event's t_ms
    minus its duration, since the agent runtime reports its own clock), duration_ms (float64), error (string).

guardrail_trips(rec): one row per `guardrail_tripped` app event.
    guardrail (string), item_id (string), text (string), played_ms (float64), follow_up (string),
    t_ms (float64).

usage(rec): one row per server response.done.
    response_id (string), status (string), input_tokens, output_tokens, total_tokens, input_text_tokens,
    input_audio_tokens, output_text_tokens, output_audio_tokens, cached_tokens (Int64, <NA> when the server
    sent no usage), t_ms (float64).

compare(recordings): one row per run, indexed by run label (index name "run").
    architecture (string: meta["architecture"], "realtime" when absent), turns, responses (int64),
    median_eos_to_first_audio_ms, median_eos_to_first_transcript_ms, median_transcription_ms,
    median_text_model_ms, median_synthesis_ms (float64),
    tool_calls, tool_errors, guardrail_trips, interruptions, input_tokens, output_tokens,
    total_tokens (int64).
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from voicelab.audio.b64 import b64decode
from voicelab.checks import checked
from voicelab.errors import ConfigError
from voicelab.protocol.conversation import place_item
from voicelab.protocol.wire_audio import PCM16_BYTES_PER_MS as _PCM16_BYTES_PER_MS
from voicelab.recording import input_origin_ms, read_events, read_meta

__all__ = [
    "COMPARE_COLUMNS",
    "GUARDRAIL_COLUMNS",
    "HISTORY_COLUMNS",
    "TOOL_CALL_COLUMNS",
    "TURN_COLUMNS",
    "USAGE_COLUMNS",
    "compare",
    "guardrail_trips",
    "history",
    "tool_calls",
    "turns",
    "usage",
]

STRING = "string"
FLOAT = "float64"

HISTORY_COLUMNS: dict[str, str] = {
    "item_id": STRING,
    "previous_item_id": STRING,
    "role_or_type": STRING,
    "agent": STRING,
    "text": STRING,
    "audio_ms": FLOAT,
    "status": STRING,
    "interrupted": "bool",
    "truncated_ms": FLOAT,
    "start_ms": FLOAT,
    "end_ms": FLOAT,
}
TURN_COLUMNS: dict[str, str] = {
    "turn": "int64",
    "item_id": STRING,
    "kind": STRING,
    "speech_start_ms": FLOAT,
    "speech_stop_ms": FLOAT,
    "audio_start_ms": FLOAT,
    "audio_end_ms": FLOAT,
    "speech_end_ms": FLOAT,
    "committed_ms": FLOAT,
    "response_id": STRING,
    "response_created_ms": FLOAT,
    "first_audio_ms": FLOAT,
    "first_transcript_ms": FLOAT,
    "response_done_ms": FLOAT,
    "status": STRING,
    "eos_to_first_audio_ms": FLOAT,
    "eos_to_first_transcript_ms": FLOAT,
    "speech_end_to_first_audio_ms": FLOAT,
    "transcription_ms": FLOAT,
    "text_model_ms": FLOAT,
    "synthesis_ms": FLOAT,
    "tool_ms": FLOAT,
    "interrupted": "bool",
}
TOOL_CALL_COLUMNS: dict[str, str] = {
    "call_id": STRING,
    "name": STRING,
    "arguments": "object",
    "output": STRING,
    "stub_kind": STRING,
    "approval": STRING,
    "started_ms": FLOAT,
    "duration_ms": FLOAT,
    "error": STRING,
}
GUARDRAIL_COLUMNS: dict[str, str] = {
    "guardrail": STRING,
    "item_id": STRING,
    "text": STRING,
    "played_ms": FLOAT,
    "follow_up": STRING,
    "t_ms": FLOAT,
}
_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "cached_tokens",
)
USAGE_COLUMNS: dict[str, str] = {
    "response_id": STRING,
    "status": STRING,
    **dict.fromkeys(_TOKEN_COLUMNS, "Int64"),
    "t_ms": FLOAT,
}
COMPARE_COLUMNS: dict[str, str] = {
    "architecture": STRING,
    "turns": "int64",
    "responses": "int64",
    "median_eos_to_first_audio_ms": FLOAT,
    "median_eos_to_first_transcript_ms": FLOAT,
    "median_transcription_ms": FLOAT,
    "median_text_model_ms": FLOAT,
    "median_synthesis_ms": FLOAT,
    "tool_calls": "int64",
    "tool_errors": "int64",
    "guardrail_trips": "int64",
    "interruptions": "int64",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "total_tokens": "int64",
}

NAN = math.nan


# ----------------------------------------------------------------------------------------------------
# input


@dataclass(frozen=True)
class _Source:
    meta: dict[str, Any]
    events: list[dict[str, Any]]


def _load(rec: Any) -> _Source:
    """Events and meta of a Recording, a recording folder, or a live Session."""
    if isinstance(rec, _Source):
        return rec
    if isinstance(rec, (str, Path)):
        return _read_folder(Path(rec))
    events = getattr(rec, "events", None)
    if isinstance(events, list):
        meta = getattr(rec, "meta", None)
        return _Source(dict(meta) if isinstance(meta, Mapping) else {}, events)
    if hasattr(rec, "recording_path"):
        path = rec.recording_path
        if path is None:
            raise ConfigError(
                "this session has no recording (it was connected with record_dir=False, or is not open yet): "
                "connect with record_dir=None (the default, ./recordings/<timestamp>) or a folder"
            )
        return _read_folder(Path(path))
    recording = getattr(rec, "recording", None)
    if recording is not None and recording is not rec:
        return _load(recording)
    raise ConfigError(
        f"voicelab.tables cannot read a {type(rec).__name__}: pass a voicelab.Recording, the path of a "
        "recording folder (with events.jsonl), or a Session that was connected with record_dir="
    )


def _read_folder(path: Path) -> _Source:
    return _Source(read_meta(path), read_events(path))


# ----------------------------------------------------------------------------------------------------
# one pass over the events


@dataclass
class _Item:
    item_id: str
    kind: str | None = None
    agent: str | None = None
    previous_item_id: str | None = None
    has_previous: bool = False
    final_text: dict[int, str] = field(default_factory=dict)
    delta_text: dict[int, list[str]] = field(default_factory=dict)
    name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    output: str | None = None
    audio_ms: float = 0.0
    status: str | None = None
    response_id: str | None = None
    interrupted: bool = False
    truncated_ms: float | None = None
    client_truncated_ms: float | None = None
    played_ms: float | None = None
    start_ms: float = NAN
    end_ms: float = NAN

    def text(self, transcripts: dict[int, str] | None) -> str | None:
        if self.kind == "function_call":
            return f"{self.name or ''}({self.arguments or ''})"
        if self.kind == "function_call_output":
            return self.output
        parts = dict(self.final_text)
        for index, deltas in self.delta_text.items():
            if not parts.get(index):
                parts[index] = "".join(deltas)
        if transcripts:
            parts.update({i: t for i, t in transcripts.items() if t})
        texts = [parts[i] for i in sorted(parts) if parts[i]]
        return " ".join(texts) if texts else None


@dataclass
class _Response:
    response_id: str
    created_ms: float = NAN
    done_ms: float = NAN
    status: str | None = None
    first_audio_ms: float = NAN
    first_transcript_ms: float = NAN
    items: list[str] = field(default_factory=list)


@dataclass
class _Turn:
    item_id: str | None
    kind: str
    anchor_ms: float
    speech_start_ms: float = NAN
    speech_stop_ms: float = NAN
    audio_start_ms: float = NAN
    audio_end_ms: float = NAN
    speech_end_ms: float = NAN
    committed_ms: float = NAN
    responses: list[str] = field(default_factory=list)


def _audio_ms(payload: Any) -> float:
    """Duration of an audio field: a `$audio` reference, or (not replaced) base64 PCM16 24 kHz."""
    if isinstance(payload, dict):
        ref = payload.get("$audio")
        if isinstance(ref, dict):
            return float(ref.get("duration_ms") or 0.0)
        return 0.0
    if isinstance(payload, str) and payload:
        try:
            return len(b64decode(payload, validate=False)) / _PCM16_BYTES_PER_MS
        except (binascii.Error, ValueError):
            return 0.0
    return 0.0


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else NAN


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


class _Conversation:
    """Items, responses and turns rebuilt from one pass over the recorded events."""

    def __init__(self, source: _Source) -> None:
        agent = source.meta.get("agent")
        self.agent: str | None = agent if isinstance(agent, str) else None
        self.items: dict[str, _Item] = {}
        self.order: list[str] = []
        self.responses: dict[str, _Response] = {}
        self.turns: list[_Turn] = []
        self.turn_of_item: dict[str, _Turn] = {}
        self.transcripts: dict[str, dict[int, str]] = {}
        self.transcript_deltas: dict[str, dict[int, list[str]]] = {}
        self.usage_rows: list[dict[str, Any]] = []
        self.tool_events: list[tuple[float, dict[str, Any]]] = []
        self.tool_starts: dict[str, float] = {}
        self.guardrail_events: list[tuple[float, dict[str, Any]]] = []
        self.stages: list[dict[str, Any]] = []  # pipeline_stage app events (chained sessions)
        architecture = source.meta.get("architecture")
        self.architecture = architecture if isinstance(architecture, str) else "realtime"
        self.function_outputs: dict[str, tuple[float, Any]] = {}
        self.client_audio_ms: dict[str, float] = {}
        self.audio_origin_ms = input_origin_ms(source.events)  # the first input audio on the session clock
        self.silence_ms = NAN  # server_vad silence_duration_ms in effect (from session.created/updated)
        self.pending_buffer_ms = 0.0
        self.client_commit_ms: float | None = None
        self.interrupted_items: dict[str, float | None] = {}
        for record in source.events:
            self._feed(record)

    # -- items -------------------------------------------------------------------------------------

    def _item(self, item_id: str, t: float, previous: Any = ..., place: bool = True) -> _Item:
        item = self.items.get(item_id)
        if item is None:
            item = _Item(item_id, agent=self.agent, start_ms=t, end_ms=t)
            self.items[item_id] = item
            if place:
                self._place(item_id, previous)
        else:
            if math.isnan(item.start_ms):
                item.start_ms = t
            item.end_ms = t if math.isnan(item.end_ms) else max(item.end_ms, t)
        if previous is not ... and not item.has_previous:
            item.previous_item_id = previous if isinstance(previous, str) else None
            item.has_previous = True
        return item

    def _place(self, item_id: str, previous: Any) -> None:
        place_item(self.order, item_id, previous)  # the session's own rule (voicelab.protocol.conversation)

    def _absorb_item(self, data: Any, t: float, previous: Any = ..., response_id: str | None = None) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        item = self._item(data["id"], t, previous)
        item_type = data.get("type")
        kind = data.get("role") if item_type == "message" else item_type
        if isinstance(kind, str):
            item.kind = kind
        if isinstance(data.get("status"), str):
            item.status = data["status"]
        if response_id:
            item.response_id = response_id
        if item_type in ("function_call", "function_call_output"):
            item.name = data.get("name") or item.name
            item.call_id = data.get("call_id") or item.call_id
            if isinstance(data.get("arguments"), str) and data["arguments"]:
                item.arguments = data["arguments"]
            if data.get("output") is not None:
                item.output = _str(data["output"])
            return
        content = data.get("content")
        if isinstance(content, list):
            for index, part in enumerate(content):
                if not isinstance(part, dict):
                    continue
                text = part.get("text") or part.get("transcript")
                if isinstance(text, str) and text:
                    item.final_text[index] = text

    # -- events ------------------------------------------------------------------------------------

    def _feed(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        if not isinstance(event, dict):
            event = {}
        kind = record.get("type") or event.get("type")
        t = _num(record.get("t_ms"))
        direction = record.get("dir")
        if direction == "server":
            self._server(kind, event, t)
        elif direction == "client":
            self._client(kind, event, t)
        elif direction == "app":
            self._app(kind, event, t)

    def _server(self, kind: Any, ev: dict[str, Any], t: float) -> None:
        item_id = ev.get("item_id")
        if kind == "response.output_audio.delta" or kind == "response.audio.delta":
            item = self.items.get(item_id) if isinstance(item_id, str) else None
            if item is not None:
                item.audio_ms += _audio_ms(ev.get("delta"))
                item.end_ms = t
            response = self.responses.get(ev.get("response_id"))  # type: ignore[arg-type]
            if response is not None and math.isnan(response.first_audio_ms):
                response.first_audio_ms = t
        elif kind in (
            "response.output_audio_transcript.delta",
            "response.audio_transcript.delta",
            "response.output_text.delta",
            "response.text.delta",
        ):
            if isinstance(item_id, str):
                item = self._item(item_id, t)
                item.delta_text.setdefault(ev.get("content_index") or 0, []).append(ev.get("delta") or "")
            response = self.responses.get(ev.get("response_id"))  # type: ignore[arg-type]
            if response is not None and math.isnan(response.first_transcript_ms):
                response.first_transcript_ms = t
        elif kind in (
            "response.output_audio_transcript.done",
            "response.audio_transcript.done",
            "response.output_text.done",
            "response.text.done",
        ):
            text = ev.get("transcript") if "transcript" in ev else ev.get("text")
            if isinstance(item_id, str) and isinstance(text, str):
                self._item(item_id, t).final_text[ev.get("content_index") or 0] = text
        elif kind in ("conversation.item.added", "conversation.item.created", "conversation.item.done"):
            previous = ev.get("previous_item_id", ...)
            self._absorb_item(ev.get("item"), t, previous)
            self._maybe_text_turn(ev.get("item"), t)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            response_id = ev.get("response_id")
            self._absorb_item(ev.get("item"), t, response_id=response_id)
            data = ev.get("item")
            response = self.responses.get(response_id)  # type: ignore[arg-type]
            if response is not None and isinstance(data, dict) and data.get("id") not in response.items:
                response.items.append(data.get("id"))  # type: ignore[arg-type]
        elif kind == "response.content_part.done":
            part = ev.get("part")
            if isinstance(item_id, str) and isinstance(part, dict):
                text = part.get("transcript") or part.get("text")
                if isinstance(text, str) and text:
                    self._item(item_id, t).final_text[ev.get("content_index") or 0] = text
        elif kind == "response.function_call_arguments.done":
            if isinstance(item_id, str):
                item = self._item(item_id, t)
                item.kind = item.kind or "function_call"
                item.name = ev.get("name") or item.name
                item.call_id = ev.get("call_id") or item.call_id
                item.arguments = ev.get("arguments") or item.arguments
        elif kind == "response.created":
            self._response_created(ev.get("response"), t)
        elif kind == "response.done":
            self._response_done(ev.get("response"), t)
        elif kind == "input_audio_buffer.speech_started":
            turn = _Turn(item_id, "vad", t, speech_start_ms=t, audio_start_ms=_num(ev.get("audio_start_ms")))
            self._add_turn(turn)
        elif kind == "input_audio_buffer.speech_stopped":
            turn = self.turn_of_item.get(item_id)  # type: ignore[arg-type, assignment]
            if turn is None:
                turn = _Turn(item_id, "vad", t)
                self._add_turn(turn)
            turn.speech_stop_ms = t
            turn.audio_end_ms = _num(ev.get("audio_end_ms"))
            if self.audio_origin_ms is not None:  # audio_end_ms = speech offset + silence_duration_ms
                turn.speech_end_ms = self.audio_origin_ms + turn.audio_end_ms - self.silence_ms
        elif kind in ("session.created", "session.updated"):
            session = ev.get("session")
            audio = session.get("audio") if isinstance(session, dict) else None
            audio_in = audio.get("input") if isinstance(audio, dict) else None
            if isinstance(audio_in, dict) and "turn_detection" in audio_in:
                detection = audio_in.get("turn_detection")
                server_vad = isinstance(detection, dict) and detection.get("type") == "server_vad"
                self.silence_ms = _num(detection.get("silence_duration_ms")) if server_vad else NAN  # type: ignore[union-attr]
        elif kind == "input_audio_buffer.timeout_triggered":
            turn = self.turn_of_item.get(item_id)  # type: ignore[arg-type, assignment]
            if turn is None:
                turn = _Turn(item_id, "timeout", t)
                self._add_turn(turn)
            turn.speech_stop_ms = t
            turn.audio_start_ms = _num(ev.get("audio_start_ms"))
            turn.audio_end_ms = _num(ev.get("audio_end_ms"))
        elif kind == "input_audio_buffer.committed":
            self._committed(item_id, ev.get("previous_item_id", ...), t)
        elif kind == "input_audio_buffer.cleared":
            self.pending_buffer_ms = 0.0
            self.client_commit_ms = None
        elif kind == "conversation.item.input_audio_transcription.completed":
            if isinstance(item_id, str):
                by_index = self.transcripts.setdefault(item_id, {})
                by_index[ev.get("content_index") or 0] = ev.get("transcript") or ""
        elif kind == "conversation.item.input_audio_transcription.delta":
            if isinstance(item_id, str):
                by_index_deltas = self.transcript_deltas.setdefault(item_id, {})
                by_index_deltas.setdefault(ev.get("content_index") or 0, []).append(ev.get("delta") or "")
        elif kind == "conversation.item.truncated":
            if isinstance(item_id, str):
                item = self._item(item_id, t)
                item.truncated_ms = _num(ev.get("audio_end_ms"))
                item.interrupted = True
        elif kind == "conversation.item.deleted" and isinstance(item_id, str) and item_id in self.items:
            self.items[item_id].status = "deleted"

    def _client(self, kind: Any, ev: dict[str, Any], t: float) -> None:
        if kind == "input_audio_buffer.append":
            self.pending_buffer_ms += _audio_ms(ev.get("audio"))
        elif kind == "input_audio_buffer.commit":
            self.client_commit_ms = self.pending_buffer_ms
            self.pending_buffer_ms = 0.0
        elif kind == "input_audio_buffer.clear":
            self.pending_buffer_ms = 0.0
            self.client_commit_ms = None
        elif kind == "conversation.item.truncate":
            item_id = ev.get("item_id")
            if isinstance(item_id, str):
                self.interrupted_items.setdefault(item_id, None)
                item = self.items.get(item_id)
                if item is not None:
                    item.client_truncated_ms = _num(ev.get("audio_end_ms"))
        elif kind == "conversation.item.create":
            data = ev.get("item")
            if not isinstance(data, dict):
                return
            if data.get("type") == "function_call_output" and isinstance(data.get("call_id"), str):
                self.function_outputs.setdefault(data["call_id"], (t, data.get("output")))
            content = data.get("content")
            if isinstance(data.get("id"), str) and isinstance(content, list):
                total = sum(_audio_ms(p.get("audio")) for p in content if isinstance(p, dict))
                if total:
                    self.client_audio_ms[data["id"]] = total

    def _app(self, kind: Any, ev: dict[str, Any], t: float) -> None:
        if kind == "handoff":
            to_agent = ev.get("to_agent")
            self.agent = to_agent if isinstance(to_agent, str) else self.agent
        elif kind == "audio_interrupted":
            item_id = ev.get("item_id")
            if isinstance(item_id, str):
                self.interrupted_items[item_id] = _num(ev.get("played_ms"))
        elif kind == "tool_call":
            self.tool_events.append((t, ev))
        elif kind == "tool_start" and isinstance(ev.get("call_id"), str):
            self.tool_starts.setdefault(ev["call_id"], t)
        elif kind == "guardrail_tripped":
            self.guardrail_events.append((t, ev))
        elif kind == "pipeline_stage":
            self.stages.append(ev)

    # -- responses and turns -----------------------------------------------------------------------

    def _response_created(self, data: Any, t: float) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return
        response = self.responses.setdefault(data["id"], _Response(data["id"]))
        response.created_ms = t
        response.status = data.get("status") or response.status
        if self.turns and self.turns[-1].anchor_ms <= t:
            self.turns[-1].responses.append(response.response_id)

    def _response_done(self, data: Any, t: float) -> None:
        if not isinstance(data, dict):
            return
        response_id = data.get("id")
        response = self.responses.get(response_id) if isinstance(response_id, str) else None
        if response is None and isinstance(response_id, str):
            response = self.responses[response_id] = _Response(response_id)
        status = data.get("status")
        if response is not None:
            response.done_ms = t
            response.status = status or response.status
        for out in data.get("output") or []:
            if isinstance(out, dict) and isinstance(out.get("id"), str):
                if out["id"] in self.items:
                    self._absorb_item(out, t, response_id=response_id)
                if response is not None and out["id"] not in response.items:
                    response.items.append(out["id"])
                if status == "cancelled" and out["id"] in self.items:
                    self.items[out["id"]].interrupted = True
        self.usage_rows.append(_usage_row(response_id, status, data.get("usage"), t))

    def _add_turn(self, turn: _Turn) -> None:
        self.turns.append(turn)
        if turn.item_id:
            self.turn_of_item[turn.item_id] = turn

    def _committed(self, item_id: Any, previous: Any, t: float) -> None:
        if not isinstance(item_id, str):
            return
        item = self._item(item_id, t, previous)
        item.kind = item.kind or "user"
        turn = self.turn_of_item.get(item_id)
        if turn is None:
            turn = _Turn(item_id, "manual", t)
            self._add_turn(turn)
        turn.committed_ms = t
        if turn.kind == "vad":
            item.start_ms = min(item.start_ms, turn.speech_start_ms)
        if not math.isnan(turn.audio_start_ms) and not math.isnan(turn.audio_end_ms):
            item.audio_ms = max(0.0, turn.audio_end_ms - turn.audio_start_ms)
        elif self.client_commit_ms is not None:
            item.audio_ms = self.client_commit_ms
        else:
            item.audio_ms = self.pending_buffer_ms
        self.pending_buffer_ms = 0.0
        self.client_commit_ms = None

    def _maybe_text_turn(self, data: Any, t: float) -> None:
        if not isinstance(data, dict) or data.get("role") != "user" or data.get("type") != "message":
            return
        item_id = data.get("id")
        if not isinstance(item_id, str) or item_id in self.turn_of_item:
            return
        content = data.get("content") or []
        if any(isinstance(p, dict) and p.get("type") == "input_audio" for p in content):
            return
        self._add_turn(_Turn(item_id, "text", t, committed_ms=t))

    def finish(self) -> None:
        """Apply what is known only at the end (client truncations, interrupted audio, client audio)."""
        for item_id, played in self.interrupted_items.items():
            item = self.items.get(item_id)
            if item is None:
                continue
            item.interrupted = True
            if played is not None and not math.isnan(played):
                item.played_ms = played
        for item_id, ms in self.client_audio_ms.items():
            item = self.items.get(item_id)
            if item is not None and not item.audio_ms:
                item.audio_ms = ms


def _usage_row(response_id: Any, status: Any, usage: Any, t: float) -> dict[str, Any]:
    usage = usage if isinstance(usage, dict) else {}
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    return {
        "response_id": response_id if isinstance(response_id, str) else None,
        "status": status if isinstance(status, str) else None,
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "input_text_tokens": inp.get("text_tokens"),
        "input_audio_tokens": inp.get("audio_tokens"),
        "output_text_tokens": out.get("text_tokens"),
        "output_audio_tokens": out.get("audio_tokens"),
        "cached_tokens": inp.get("cached_tokens"),
        "t_ms": t,
    }


# The conversations built last, keyed by their events list: the tables of one Recording (an experiment's run,
# `compare`, the cockpit) then parse its events once, not once per table. An entry is used only for the very
# same list with the same length; folders and live sessions are read afresh each time.
_MEMO: list[tuple[list[dict[str, Any]], int, _Conversation]] = []
_MEMO_SIZE = 8


def _conversation(rec: Any) -> _Conversation:
    source = _load(rec)
    reusable = not isinstance(rec, (str, Path)) and not hasattr(rec, "recording_path")
    if reusable:
        for events, length, conversation in _MEMO:
            if events is source.events and length == len(events):
                return conversation
    conversation = _Conversation(source)
    conversation.finish()
    if reusable:
        _MEMO.append((source.events, len(source.events), conversation))
        del _MEMO[:-_MEMO_SIZE]
    return conversation


def _frame(rows: Iterable[dict[str, Any]] | dict[str, list[Any]], schema: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly the schema's columns and dtypes (also when there are no rows)."""
    if isinstance(rows, dict):
        columns = rows
    else:
        rows = list(rows)
        columns = {name: [row.get(name) for row in rows] for name in schema}
    data: dict[str, Any] = {}
    for name, dtype in schema.items():  # arrays, not a Series per column: a table is built per call
        values = columns[name]
        if dtype == "object":
            column: Any = np.empty(len(values), dtype=object)
            column[:] = values
        elif dtype == FLOAT:
            column = np.array([NAN if v is None else v for v in values], dtype=np.float64)
        elif dtype in (STRING, "Int64"):
            column = pd.array(values, dtype=dtype)
        else:
            column = pd.Series(values, dtype=object).astype(dtype)
        data[name] = column
    return pd.DataFrame(data, columns=list(schema))


# ----------------------------------------------------------------------------------------------------
# public tables


@checked
def history(rec: Any) -> pd.DataFrame:
    """One row per conversation item, in order (columns in the module docstring)."""
    return _history(_conversation(rec))


def _history(conv: _Conversation) -> pd.DataFrame:
    rows = []
    previous: str | None = None
    for item_id in conv.order:
        item = conv.items[item_id]
        transcripts = conv.transcripts.get(item_id)
        if not transcripts and item_id in conv.transcript_deltas:
            transcripts = {i: "".join(d) for i, d in conv.transcript_deltas[item_id].items()}
        truncated = item.truncated_ms
        if truncated is None:
            truncated = item.client_truncated_ms if item.client_truncated_ms is not None else item.played_ms
        rows.append(
            {
                "item_id": item_id,
                "previous_item_id": item.previous_item_id if item.has_previous else previous,
                "role_or_type": item.kind,
                "agent": item.agent,
                "text": item.text(transcripts),
                "audio_ms": item.audio_ms,
                "status": item.status,
                "interrupted": item.interrupted,
                "truncated_ms": truncated,
                "start_ms": item.start_ms,
                "end_ms": item.end_ms,
            }
        )
        previous = item_id
    return _frame(rows, HISTORY_COLUMNS)


@checked
def turns(rec: Any) -> pd.DataFrame:
    """One row per user turn with its latencies (columns in the module docstring)."""
    return _turns(_conversation(rec))


def _turns(conv: _Conversation) -> pd.DataFrame:
    calls = _tool_rows(conv)
    rows = []
    for index, turn in enumerate(conv.turns):
        next_anchor = conv.turns[index + 1].anchor_ms if index + 1 < len(conv.turns) else math.inf
        responses = [conv.responses[r] for r in turn.responses if r in conv.responses]
        first = responses[0] if responses else None
        last = responses[-1] if responses else None
        first_audio = min(
            (r.first_audio_ms for r in responses if not math.isnan(r.first_audio_ms)), default=NAN
        )
        first_text = min(
            (r.first_transcript_ms for r in responses if not math.isnan(r.first_transcript_ms)), default=NAN
        )
        eos = turn.speech_stop_ms if not math.isnan(turn.speech_stop_ms) else turn.committed_ms
        interrupted = any(r.status == "cancelled" for r in responses) or any(
            conv.items[i].interrupted for r in responses for i in r.items if i in conv.items
        )
        tool_ms = sum(
            c["duration_ms"]
            for c in calls
            if c["duration_ms"] is not None
            and not math.isnan(c["duration_ms"])
            and turn.anchor_ms <= _num(c["started_ms"]) < next_anchor
        )
        split = _split(conv, turn, responses, first_audio)
        rows.append(
            {
                "turn": index,
                "item_id": turn.item_id,
                "kind": turn.kind,
                "speech_start_ms": turn.speech_start_ms,
                "speech_stop_ms": turn.speech_stop_ms,
                "audio_start_ms": turn.audio_start_ms,
                "audio_end_ms": turn.audio_end_ms,
                "speech_end_ms": _speech_end(turn),
                "committed_ms": turn.committed_ms,
                "response_id": first.response_id if first else None,
                "response_created_ms": first.created_ms if first else NAN,
                "first_audio_ms": first_audio,
                "first_transcript_ms": first_text,
                "response_done_ms": max((r.done_ms for r in responses), default=NAN),
                "status": last.status if last else None,
                "eos_to_first_audio_ms": first_audio - eos,
                "eos_to_first_transcript_ms": first_text - eos,
                "speech_end_to_first_audio_ms": _speech_end_to_first_audio(turn, first_audio),
                **split,
                "tool_ms": float(tool_ms),
                "interrupted": bool(interrupted),
            }
        )
    return _frame(rows, TURN_COLUMNS)


def _speech_end(turn: _Turn) -> float:
    """Where the caller's speech ended on the session clock, or NaN when the input audio was sent faster than
    real time: the audio clock then runs ahead of the session clock, and the position it gives falls after
    the server's own speech_stopped (impossible for audio sent as it is spoken)."""
    end = turn.speech_end_ms
    if not math.isnan(end) and not math.isnan(turn.speech_stop_ms) and end > turn.speech_stop_ms:
        return NAN
    return end


def _speech_end_to_first_audio(turn: _Turn, first_audio: float) -> float:
    """The silence the caller heard; NaN when the speech end is unknown (see _speech_end) or would come after
    the first audio (audio sent faster than real time: no caller heard that silence)."""
    gap = first_audio - _speech_end(turn)
    return NAN if gap < 0 else gap


def _split(
    conv: _Conversation, turn: _Turn, responses: list[_Response], first_audio: float
) -> dict[str, float]:
    """A chained turn's latency split (see the docstring); NaN without pipeline_stage events."""
    out = {"transcription_ms": NAN, "text_model_ms": NAN, "synthesis_ms": NAN}
    if not conv.stages:
        return out

    def duration(stage: dict[str, Any]) -> float:
        return _num(stage.get("ended_ms")) - _num(stage.get("started_ms"))

    for stage in conv.stages:
        if stage.get("stage") == "transcription" and stage.get("item_id") == turn.item_id:
            out["transcription_ms"] = duration(stage)
    before = [r.response_id for r in responses if math.isnan(first_audio) or r.created_ms <= first_audio]
    text = [
        duration(s) for s in conv.stages if s.get("stage") == "text_model" and s.get("response_id") in before
    ]
    if text:
        out["text_model_ms"] = float(sum(text))
    speech = [s for s in conv.stages if s.get("stage") == "synthesis" and s.get("response_id") in before]
    if speech:
        out["synthesis_ms"] = duration(speech[-1])
    return out


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {"$raw": value}
        return parsed if isinstance(parsed, dict) else {"$raw": value}
    return {} if value is None else {"$raw": _str(value)}


def _tool_rows(conv: _Conversation) -> list[dict[str, Any]]:
    if conv.tool_events:
        rows = []
        for t, ev in conv.tool_events:
            duration = _num(ev.get("duration_ms"))
            started = conv.tool_starts.get(ev.get("call_id"), NAN)  # type: ignore[arg-type]
            if math.isnan(started):
                started = t - duration if not math.isnan(duration) else t
            rows.append(
                {
                    "call_id": ev.get("call_id"),
                    "name": ev.get("name"),
                    "arguments": _arguments(ev.get("arguments")),
                    "output": _str(ev.get("output")),
                    "stub_kind": _str(ev.get("stub_kind")),
                    "approval": _str(ev.get("approval")),
                    "started_ms": started,
                    "duration_ms": duration,
                    "error": _str(ev.get("error")) or None,
                }
            )
        return rows
    rows = []
    for item_id in conv.order:
        item = conv.items[item_id]
        if item.kind != "function_call":
            continue
        call_id = item.call_id
        output_t, output = conv.function_outputs.get(call_id or "", (NAN, None))
        rows.append(
            {
                "call_id": call_id,
                "name": item.name,
                "arguments": _arguments(item.arguments),
                "output": _str(output),
                "stub_kind": None,
                "approval": None,
                "started_ms": item.end_ms,
                "duration_ms": output_t - item.end_ms,
                "error": None,
            }
        )
    return rows


@checked
def tool_calls(rec: Any) -> pd.DataFrame:
    """One row per tool call (columns in the module docstring)."""
    return _frame(_tool_rows(_conversation(rec)), TOOL_CALL_COLUMNS)


@checked
def guardrail_trips(rec: Any) -> pd.DataFrame:
    """One row per tripped output guardrail (columns in the module docstring)."""
    return _guardrail_trips(_conversation(rec))


def _guardrail_trips(conv: _Conversation) -> pd.DataFrame:
    rows = [
        {
            "guardrail": _str(ev.get("guardrail")),
            "item_id": _str(ev.get("item_id")),
            "text": _str(ev.get("text")),
            "played_ms": _num(ev.get("played_ms")),
            "follow_up": _str(ev.get("follow_up")),
            "t_ms": t,
        }
        for t, ev in conv.guardrail_events
    ]
    return _frame(rows, GUARDRAIL_COLUMNS)


@checked
def usage(rec: Any) -> pd.DataFrame:
    """One row per response.done with its token usage (columns in the module docstring)."""
    return _frame(_conversation(rec).usage_rows, USAGE_COLUMNS)


@checked
def compare(recordings: Mapping[str, Any]) -> pd.DataFrame:
    """Summary metrics per run, indexed by run label, to compare prompt variants (see the docstring)."""
    if not isinstance(recordings, Mapping):
        raise ConfigError(
            "compare() takes a mapping of run label -> recording, e.g. compare({'v1': rec1, 'v2': rec2})"
        )
    rows = []
    for rec in recordings.values():
        conv = _conversation(rec)
        turn_table = _turns(conv)
        calls = _frame(_tool_rows(conv), TOOL_CALL_COLUMNS)
        use = _frame(conv.usage_rows, USAGE_COLUMNS)
        rows.append(
            {
                "architecture": conv.architecture,
                "turns": len(turn_table),
                "responses": len(use),
                "median_eos_to_first_audio_ms": turn_table["eos_to_first_audio_ms"].median(),
                "median_eos_to_first_transcript_ms": turn_table["eos_to_first_transcript_ms"].median(),
                "median_transcription_ms": turn_table["transcription_ms"].median(),
                "median_text_model_ms": turn_table["text_model_ms"].median(),
                "median_synthesis_ms": turn_table["synthesis_ms"].median(),
                "tool_calls": len(calls),
                "tool_errors": int(calls["error"].notna().sum()),
                "guardrail_trips": len(conv.guardrail_events),
                "interruptions": int(turn_table["interrupted"].sum()),
                "input_tokens": int(use["input_tokens"].sum()),
                "output_tokens": int(use["output_tokens"].sum()),
                "total_tokens": int(use["total_tokens"].sum()),
            }
        )
    frame = _frame(rows, COMPARE_COLUMNS)
    frame.index = pd.Index([str(label) for label in recordings], name="run", dtype=STRING)
    return frame
