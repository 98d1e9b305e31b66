"""The default conversation of one connection: its items, their audio and transcripts (sans-I/O).

`Conversation` answers `conversation.item.create/retrieve/delete/truncate`, adds committed user audio, and
keeps what a response needs of each item (audio bytes, TTS word marks, transcripts, function-call notes).
It does not decode audio itself: a transcript comes in by `set_transcript` (from the engine, which decodes
inline or hands the decoding out as a `voicelab.server.work.Work`).
"""

from __future__ import annotations

import binascii
import bisect
import copy
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from voicelab.audio.b64 import b64decode, b64encode
from voicelab.protocol.conversation import place_item
from voicelab.server.ids import IdMaker, stamped
from voicelab.server.input_buffer import bytes_per_ms
from voicelab.server.responses import text_tokens
from voicelab.server.validation import ClientEventError


class Conversation:
    """Items in order, plus per item: audio bytes, word marks, transcripts, call notes."""

    def __init__(self, ids: IdMaker) -> None:
        self._ids = ids
        self.items: list[dict[str, Any]] = []
        self.audio: dict[str, bytes] = {}
        self.marks: dict[str, list[tuple[int, int]]] = {}
        self.transcripts: dict[str, str] = {}
        self.call_notes: dict[str, Any] = {}
        self.pending: dict[str, Future[str]] = {}  # item id -> transcript still being finalised elsewhere

    # --- lookups ---------------------------------------------------------------------------------------

    def index(self, item_id: str) -> int | None:
        for index, item in enumerate(self.items):
            if item.get("id") == item_id:
                return index
        return None

    def last_item_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def previous_of(self, item_id: str) -> str | None:
        index = self.index(item_id)
        return self.items[index - 1]["id"] if index else None

    def replace(self, item: dict[str, Any]) -> None:
        index = self.index(item["id"])
        if index is not None:
            self.items[index] = copy.deepcopy(item)

    def require(self, item_id: Any, action: str) -> int:
        index = self.index(item_id) if isinstance(item_id, str) else None
        if index is None:
            raise ClientEventError(
                "item_not_found",
                f"Error {action} item: the item with id '{item_id}' does not exist in the conversation.",
                "item_id",
            )
        return index

    def with_audio(self, item: dict[str, Any]) -> dict[str, Any]:
        full = copy.deepcopy(item)
        audio = self.audio.get(item["id"])
        for part in full.get("content") or []:
            if part.get("type") in ("input_audio", "output_audio") and audio is not None:
                part["audio"] = b64encode(audio)
        return full

    def context_items(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The items a response sees: the conversation, or the response's own `input`."""
        if "input" not in params or params["input"] is None:
            return [copy.deepcopy(i) for i in self.items]
        items: list[dict[str, Any]] = []
        for index, entry in enumerate(params["input"]):
            if isinstance(entry, dict) and entry.get("type") == "item_reference":
                found = self.index(entry.get("id", ""))
                if found is None:
                    raise ClientEventError(
                        "invalid_value",
                        f"Invalid item reference {entry.get('id')!r}: no such item.",
                        f"response.input[{index}]",
                    )
                items.append(copy.deepcopy(self.items[found]))
            elif isinstance(entry, dict):
                items.append(copy.deepcopy(entry))
        return items

    def input_tokens(self, items: list[dict[str, Any]], instructions: str) -> tuple[int, int]:
        text = text_tokens(instructions)
        audio_ms = 0.0
        for item in items:
            for part in item.get("content") or []:
                text += text_tokens(str(part.get("text") or part.get("transcript") or ""))
            if item.get("type") in ("function_call", "function_call_output"):
                text += text_tokens(str(item.get("arguments") or item.get("output") or ""))
            if item.get("id") in self.audio:
                audio_ms += len(self.audio[item["id"]]) / 48.0
        return text, int(np.ceil(audio_ms / 100))

    # --- user audio ------------------------------------------------------------------------------------

    def commit_audio(self, item_id: str, audio: bytes) -> list[dict[str, Any]]:
        """A committed input buffer becomes a user item: committed, added, done."""
        previous = self.last_item_id()
        item = {
            "id": item_id, "type": "message", "role": "user", "object": "realtime.item",
            "status": "completed", "content": [{"type": "input_audio", "transcript": None}],
        }  # fmt: skip
        self.items.append(item)
        self.audio[item_id] = audio
        committed = {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
        return [stamped(self._ids, committed), *self._added(item, previous)]

    def _added(self, item: dict[str, Any], previous: str | None) -> list[dict[str, Any]]:
        """`conversation.item.added` then `conversation.item.done` for an item placed after `previous`."""
        return [
            stamped(self._ids, {"type": kind, "previous_item_id": previous, "item": copy.deepcopy(item)})
            for kind in ("conversation.item.added", "conversation.item.done")
        ]

    def set_transcript(self, item_id: str, text: str) -> None:
        self.transcripts[item_id] = text

    def transcription_events(
        self, item_id: str, text: str | None, problem: str | None, audio: bytes, input_format: str
    ) -> list[dict[str, Any]]:
        """`…transcription.delta` + `.completed` (the item's transcript is set), or `.failed` with why."""
        if text is None:
            error = {
                "type": "server_error",
                "code": "transcription_failed",
                "message": f"The embedded server could not transcribe the audio ({problem}).",
                "param": None,
            }
            return [
                stamped(
                    self._ids,
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": error,
                    },
                )
            ]
        index = self.index(item_id)
        if index is not None:
            self.items[index]["content"][0]["transcript"] = text
        seconds = round(len(audio) / bytes_per_ms({"type": input_format}) / 1000.0, 3)
        base = {"item_id": item_id, "content_index": 0}
        return [
            stamped(
                self._ids,
                {"type": "conversation.item.input_audio_transcription.delta", **base, "delta": text},
            ),
            stamped(
                self._ids,
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    **base,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": seconds},
                },
            ),
        ]

    # --- client events ---------------------------------------------------------------------------------

    def create(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        raw = event["item"]
        if not isinstance(raw, dict):
            raise ClientEventError("invalid_type", "Invalid type for 'item': expected an object.", "item")
        item = copy.deepcopy(raw)
        if item.get("type") == "message" and item.get("role") == "assistant":
            for index, part in enumerate(item.get("content") or []):
                if part.get("type") == "output_audio":
                    raise ClientEventError(
                        "invalid_value",
                        "Assistant audio messages cannot be created with conversation.item.create; use "
                        "'output_text' content instead.",
                        f"item.content[{index}].type",
                    )
        item_id = item.get("id") or self._ids.item()
        if self.index(item_id) is not None:
            raise ClientEventError(
                "invalid_value",
                f"Item with id '{item_id}' already exists; use a new id or leave it out.",
                "item.id",
            )
        previous_param = event.get("previous_item_id")
        if previous_param not in (None, "root") and self.index(previous_param) is None:
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'previous_item_id': no item with id '{previous_param}' in the "
                "conversation. Use an "
                "existing id, 'root', or leave it out to append.",
                "previous_item_id",
            )
        # the client's and the tables' ordering rule; a client's null means "append" (the parameter left out)
        order = [existing["id"] for existing in self.items]
        place_item(order, item_id, ... if previous_param is None else previous_param)
        position = order.index(item_id)
        item = {"id": item_id, **{k: v for k, v in item.items() if k != "id"}}
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        for part in item.get("content") or []:
            if part.get("type") == "input_audio" and part.get("audio"):
                try:
                    self.audio[item_id] = b64decode(part["audio"])
                except (binascii.Error, ValueError):
                    raise ClientEventError(
                        "invalid_value", "Invalid 'item.content.audio': not base64.", "item"
                    ) from None
                del part["audio"]
                part.setdefault("transcript", None)
        previous = self.items[position - 1]["id"] if position > 0 else None
        self.items.insert(position, item)
        return self._added(item, previous)

    def retrieve(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        index = self.require(event["item_id"], "retrieving")
        return [
            stamped(
                self._ids, {"type": "conversation.item.retrieved", "item": self.with_audio(self.items[index])}
            )
        ]

    def delete(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        index = self.require(event["item_id"], "deleting")
        item = self.items.pop(index)
        self.audio.pop(item["id"], None)
        return [stamped(self._ids, {"type": "conversation.item.deleted", "item_id": item["id"]})]

    def truncate(
        self,
        event: dict[str, Any],
        playing: tuple[bytes, float] | None,
        output_bytes_per_ms: float,
    ) -> list[dict[str, Any]]:
        """`playing`: (the audio released so far, bytes per ms) when the item's response is still going."""
        index = self.require(event["item_id"], "truncating")
        item = self.items[index]
        content = item.get("content") or []
        content_index = event["content_index"]
        is_audio = item.get("role") == "assistant" and any(p.get("type") == "output_audio" for p in content)
        audio = playing[0] if playing is not None else self.audio.get(item["id"])
        if not is_audio or not audio:
            raise ClientEventError(
                "unsupported_content_type", "Only model output audio messages can be truncated.", "item_id"
            )
        if content_index != 0 or content_index >= len(content):  # negative indexes included
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'content_index': {content_index}; audio is content 0.",
                "content_index",
            )
        per_ms = playing[1] if playing is not None else output_bytes_per_ms
        length_ms = len(audio) / per_ms
        end_ms = event["audio_end_ms"]
        if end_ms < 0:
            raise ClientEventError(
                "invalid_value",
                f"Invalid 'audio_end_ms': {end_ms}. Use the ms of audio the user heard, from 0 up.",
                "audio_end_ms",
            )
        if end_ms > length_ms:
            raise ClientEventError(
                None,
                f"Audio content of {int(length_ms)}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
            )
        cut = int(end_ms * per_ms)
        self.audio[item["id"]] = audio[: cut - cut % 2]
        transcript = content[0].get("transcript") or ""
        content[0]["transcript"] = self._heard(item["id"], transcript, end_ms, length_ms)
        return [
            stamped(
                self._ids,
                {
                    "type": "conversation.item.truncated",
                    "item_id": item["id"],
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                },
            )
        ]

    def _heard(self, item_id: str, transcript: str, end_ms: float, length_ms: float) -> str:
        """The transcript words spoken before `end_ms` (word marks from the TTS, else proportional)."""
        marks = self.marks.get(item_id)
        if marks:
            starts = [ms for _, ms in marks]
            spoken = bisect.bisect_left(starts, end_ms)
            cut = marks[spoken][0] if spoken < len(marks) else len(transcript)
        else:
            cut = int(len(transcript) * (end_ms / length_ms)) if length_ms else 0
        return transcript[:cut].rstrip()


__all__ = ["Conversation"]
