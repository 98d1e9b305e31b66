"""One response of the embedded server: its events in the real GA order, their release times, and
cancellation.

Events are planned when the response starts (`plan_*`) and released by the engine as the clock passes their
time. `pace="fast"` releases everything at once in the same order. What was released so far (transcript, text,
audio bytes) is tracked so that a cancelled response closes exactly what it had opened.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from voicelab.audio.b64 import b64decode, b64encode

Pace = Literal["realtime", "fast"]
TOKENS_PER_MINUTE = 40_000  # the nominal limit reported in rate_limits.updated


def text_tokens(text: str) -> int:
    """A rough token estimate (4 characters a token); the server has no tokenizer."""
    return math.ceil(len(text) / 4)


def usage(input_text: int, input_audio: int, output_text: int, output_audio: int) -> dict[str, Any]:
    """A `usage` object; counts are estimates (text: 4 chars/token, audio: 10 tokens/s in, 20 "
    "tokens/s out)."""
    total_in = input_text + input_audio
    total_out = output_text + output_audio
    return {
        "total_tokens": total_in + total_out,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def split_words(text: str) -> list[str]:
    """Transcript deltas: one per word, keeping the spaces so that the deltas join to the text."""
    words: list[str] = []
    for index, word in enumerate(text.split(" ")):
        words.append(word if index == 0 else " " + word)
    return [w for w in words if w]


@dataclass
class Planned:
    at_ms: float
    event: dict[str, Any]


@dataclass
class ActiveResponse:
    """A response in flight. `default` is False for out-of-band (`conversation: "none"`) responses."""

    response: dict[str, Any]  # the RealtimeResponse body as of response.created
    default: bool
    started_ms: float
    planned: deque[Planned] = field(default_factory=deque)
    item: dict[str, Any] | None = None  # the output item as it will be when done
    kind: Literal["audio", "text", "call"] = "text"
    output_added: bool = False
    item_added: bool = False
    bytes_per_ms: float = 48.0
    item_done: bool = False
    part_open: bool = False
    part_done: bool = False
    transcript: str = ""
    audio: bytearray = field(default_factory=bytearray)
    audio_ms: float = 0.0  # duration of the whole planned audio
    playback_end_ms: float = 0.0  # when a real-time listener finishes hearing it
    final_status: str = "completed"
    final_details: dict[str, Any] | None = None
    final_usage: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.response["id"])

    def note_released(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.output_item.added":
            self.output_added = True
        elif kind == "conversation.item.added":
            self.item_added = True
        elif kind == "response.content_part.added":
            self.part_open = True
        elif kind in ("response.output_audio_transcript.delta", "response.output_text.delta"):
            self.transcript += event["delta"]
        elif kind == "response.output_audio.delta":
            self.audio.extend(b64decode(event["delta"]))
        elif kind == "response.content_part.done":
            self.part_done = True
        elif kind == "response.output_item.done":
            self.item_done = True

    def next_at(self) -> float | None:
        return self.planned[0].at_ms if self.planned else None


def _response_body(
    response_id: str,
    conversation_id: str | None,
    modalities: list[str],
    voice: Any,
    output_format: dict[str, Any],
    max_output_tokens: Any,
    metadata: Any,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "realtime.response",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": conversation_id,
        "output_modalities": modalities,
        "max_output_tokens": max_output_tokens,
        "audio": {"output": {"format": output_format, "voice": voice}},
        "usage": None,
        "metadata": metadata,
    }


@dataclass(frozen=True)
class Timing:
    pace: Pace = "realtime"
    chunk_ms: int = 100  # audio per response.output_audio.delta
    audio_lead_ms: float = 300.0  # audio is released this far ahead of real time
    transcript_lead_ms: float = 300.0  # the transcript runs this far ahead of the audio
    text_delta_ms: float = 20.0  # spacing of text deltas in real-time pace


class ResponsePlanner:
    """Builds the planned events of one response."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing

    def start(
        self,
        *,
        response_id: str,
        conversation_id: str | None,
        modalities: list[str],
        voice: Any,
        output_format: dict[str, Any],
        max_output_tokens: Any,
        metadata: Any,
        now_ms: float,
    ) -> ActiveResponse:
        body = _response_body(
            response_id, conversation_id, modalities, voice, output_format, max_output_tokens, metadata
        )
        active = ActiveResponse(body, conversation_id is not None, now_ms)
        active.planned.append(Planned(now_ms, {"type": "response.created", "response": copy.deepcopy(body)}))
        return active

    def _at(self, active: ActiveResponse, offset_ms: float) -> float:
        return active.started_ms if self.timing.pace == "fast" else active.started_ms + max(0.0, offset_ms)

    def _item_start(self, active: ActiveResponse, item: dict[str, Any], previous_item_id: str | None) -> None:
        now = active.started_ms
        rid = active.id
        active.planned.append(
            Planned(
                now,
                {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item},
            )
        )
        if active.default:
            active.planned.append(
                Planned(
                    now,
                    {
                        "type": "conversation.item.added",
                        "previous_item_id": previous_item_id,
                        "item": copy.deepcopy(item),
                    },
                )
            )

    def plan_message(
        self,
        active: ActiveResponse,
        *,
        item_id: str,
        previous_item_id: str | None,
        text: str,
        audio: bytes | None,
        bytes_per_ms: float,
        input_tokens: tuple[int, int],
        status: str = "completed",
        status_details: dict[str, Any] | None = None,
        marks: list[tuple[int, int]] | None = None,
    ) -> None:
        """An assistant message: audio + transcript when `audio` is given, else text."""
        rid = active.id
        active.kind = "audio" if audio is not None else "text"
        started: dict[str, Any] = {
            "id": item_id, "type": "message", "role": "assistant", "object": "realtime.item",
            "status": "in_progress", "content": [],
        }  # fmt: skip
        self._item_start(active, started, previous_item_id)
        base = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
        words = split_words(text)
        if audio is not None:
            part_start = {"type": "audio", "transcript": ""}
            content = {"type": "output_audio", "transcript": text}
            part_end = {"type": "audio", "transcript": text}
        else:
            part_start = {"type": "text", "text": ""}
            content = {"type": "output_text", "text": text}
            part_end = {"type": "text", "text": text}
        active.planned.append(
            Planned(active.started_ms, {"type": "response.content_part.added", **base, "part": part_start})
        )
        streamed: list[tuple[float, int, dict[str, Any]]] = []
        end_offset = 0.0
        if audio is not None:
            total_ms = len(audio) / bytes_per_ms
            active.bytes_per_ms = bytes_per_ms
            active.audio_ms = total_ms
            chunk = max(2, int(self.timing.chunk_ms * bytes_per_ms))
            chunk -= chunk % 2
            lead = self.timing.audio_lead_ms
            for offset in range(0, len(audio), chunk):
                piece = audio[offset : offset + chunk]
                at = offset / bytes_per_ms - lead
                delta = b64encode(piece)
                streamed.append((at, 1, {"type": "response.output_audio.delta", **base, "delta": delta}))
                end_offset = max(end_offset, at)
            chars = max(1, len(text))
            mark_chars = [c for c, _ in marks] if marks else []
            position = 0
            for word in words:
                if marks:
                    spoken = max(0, bisect.bisect_right(mark_chars, position + 1) - 1)
                    word_ms = float(marks[spoken][1])
                else:
                    word_ms = total_ms * position / chars
                at = word_ms - lead - self.timing.transcript_lead_ms
                position += len(word)
                streamed.append(
                    (at, 0, {"type": "response.output_audio_transcript.delta", **base, "delta": word})
                )
            streamed.sort(key=lambda entry: (entry[0], entry[1]))
            active.playback_end_ms = active.started_ms + total_ms
        else:
            for index, word in enumerate(words):
                at = index * self.timing.text_delta_ms
                streamed.append((at, 0, {"type": "response.output_text.delta", **base, "delta": word}))
                end_offset = max(end_offset, at)
            active.playback_end_ms = active.started_ms
        for at, _, event in streamed:
            active.planned.append(Planned(self._at(active, at), event))
        end = self._at(active, end_offset)
        if self.timing.pace == "fast":
            active.playback_end_ms = active.started_ms + (active.audio_ms if audio is not None else 0.0)
        if audio is not None:
            active.planned.append(Planned(end, {"type": "response.output_audio.done", **base}))
            active.planned.append(
                Planned(end, {"type": "response.output_audio_transcript.done", **base, "transcript": text})
            )
        else:
            active.planned.append(Planned(end, {"type": "response.output_text.done", **base, "text": text}))
        active.planned.append(Planned(end, {"type": "response.content_part.done", **base, "part": part_end}))
        item = {
            **started,
            "status": "completed" if status == "completed" else "incomplete",
            "content": [content],
        }
        active.item = item
        out_tokens = text_tokens(text)
        audio_tokens = math.ceil(active.audio_ms / 50) if audio is not None else 0
        active.final_status = status
        active.final_details = status_details
        active.final_usage = usage(input_tokens[0], input_tokens[1], out_tokens, audio_tokens)
        self._finish(active, end, previous_item_id)

    def plan_call(
        self,
        active: ActiveResponse,
        *,
        item_id: str,
        call_id: str,
        previous_item_id: str | None,
        name: str,
        arguments: dict[str, Any],
        input_tokens: tuple[int, int],
    ) -> None:
        """A function call item (PROTOCOL.md §7)."""
        rid = active.id
        active.kind = "call"
        args = json.dumps(arguments)
        started = {
            "id": item_id, "type": "function_call", "object": "realtime.item", "status": "in_progress",
            "name": name, "call_id": call_id, "arguments": "",
        }  # fmt: skip
        self._item_start(active, started, previous_item_id)
        base = {"response_id": rid, "item_id": item_id, "output_index": 0, "call_id": call_id}
        pieces = [args[i : i + 16] for i in range(0, len(args), 16)] or [""]
        for index, piece in enumerate(pieces):
            at = self._at(active, index * self.timing.text_delta_ms)
            active.planned.append(
                Planned(at, {"type": "response.function_call_arguments.delta", **base, "delta": piece})
            )
        end = self._at(active, (len(pieces) - 1) * self.timing.text_delta_ms)
        active.planned.append(
            Planned(
                end,
                {"type": "response.function_call_arguments.done", **base, "name": name, "arguments": args},
            )
        )
        active.item = {**started, "status": "completed", "arguments": args}
        active.playback_end_ms = end
        active.final_usage = usage(input_tokens[0], input_tokens[1], text_tokens(args), 0)
        self._finish(active, end, previous_item_id)

    def _finish(self, active: ActiveResponse, at: float, previous_item_id: str | None) -> None:
        item = active.item
        assert item is not None
        if active.default:
            active.planned.append(
                Planned(
                    at, {"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": item}
                )
            )
        active.planned.append(
            Planned(
                at,
                {
                    "type": "response.output_item.done",
                    "response_id": active.id,
                    "output_index": 0,
                    "item": item,
                },
            )
        )
        body = {
            **active.response,
            "status": active.final_status,
            "status_details": active.final_details,
            "output": [item],
            "usage": active.final_usage,
        }
        active.planned.append(Planned(at, {"type": "response.done", "response": body}))
        active.planned.append(Planned(at, rate_limits(active.final_usage["total_tokens"])))

    def cancel(
        self, active: ActiveResponse, reason: str, previous_item_id: str | None
    ) -> list[dict[str, Any]]:
        """The events that close a response cancelled now, given what was already released."""
        active.planned.clear()
        events: list[dict[str, Any]] = []
        output: list[dict[str, Any]] = []
        item = active.item
        if item is not None and active.output_added:
            partial = copy.deepcopy(item)
            partial["status"] = "incomplete"
            base = {"response_id": active.id, "item_id": item["id"], "output_index": 0, "content_index": 0}
            if active.kind == "call":
                partial["arguments"] = ""
                partial["status"] = "incomplete"
            elif active.part_open and not active.part_done:
                if active.kind == "audio":
                    events.append({"type": "response.output_audio.done", **base})
                    events.append(
                        {
                            "type": "response.output_audio_transcript.done",
                            **base,
                            "transcript": active.transcript,
                        }
                    )
                    part = {"type": "audio", "transcript": active.transcript}
                    partial["content"] = [{"type": "output_audio", "transcript": active.transcript}]
                else:
                    events.append({"type": "response.output_text.done", **base, "text": active.transcript})
                    part = {"type": "text", "text": active.transcript}
                    partial["content"] = [{"type": "output_text", "text": active.transcript}]
                events.append({"type": "response.content_part.done", **base, "part": part})
            if not active.item_done:
                if active.default:
                    events.append(
                        {
                            "type": "conversation.item.done",
                            "previous_item_id": previous_item_id,
                            "item": partial,
                        }
                    )
                events.append(
                    {
                        "type": "response.output_item.done",
                        "response_id": active.id,
                        "output_index": 0,
                        "item": partial,
                    }
                )
                active.item = partial
            output = [active.item]  # type: ignore[list-item]
        heard_ms = len(active.audio) / active.bytes_per_ms if active.kind == "audio" else 0.0
        spent = usage(
            active.final_usage.get("input_token_details", {}).get("text_tokens", 0),
            active.final_usage.get("input_token_details", {}).get("audio_tokens", 0),
            text_tokens(active.transcript),
            math.ceil(heard_ms / 50),
        )
        body = {
            **active.response,
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": reason},
            "output": output,
            "usage": spent,
        }
        events.append({"type": "response.done", "response": body})
        events.append(rate_limits(spent["total_tokens"]))
        return events


def rate_limits(spent_tokens: int) -> dict[str, Any]:
    """`rate_limits.updated` against a nominal per-minute budget (the embedded server has no real limits)."""
    remaining = max(0, TOKENS_PER_MINUTE - spent_tokens)
    return {
        "type": "rate_limits.updated",
        "rate_limits": [
            {
                "name": "tokens",
                "limit": TOKENS_PER_MINUTE,
                "remaining": remaining,
                "reset_seconds": round(60.0 * spent_tokens / TOKENS_PER_MINUTE, 3),
            }
        ],
    }
