"""Canned GA server event sequences (PROTOCOL.md §6.1, §6.2, §7) as plain dicts.

They follow the observed live order and validate against `openai.types.realtime`; tests, benches and fake
servers replay them. Ids are fixed so assertions can be exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from voicelab.audio.b64 import b64encode

_ids = itertools.count(1)


def _eid() -> str:
    return f"event_sample{next(_ids):09d}"


def session_created(session_id: str = "sess_sample", **session: Any) -> dict[str, Any]:
    body = {
        "type": "realtime",
        "id": session_id,
        "object": "realtime.session",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
        },
        "tool_choice": "auto",
        "tools": [],
        "max_output_tokens": "inf",
    }
    body.update(session)
    return {"type": "session.created", "event_id": _eid(), "session": body}


def _usage() -> dict[str, Any]:
    return {
        "total_tokens": 30,
        "input_tokens": 20,
        "output_tokens": 10,
        "input_token_details": {"text_tokens": 20, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 4, "audio_tokens": 6},
    }


def _response(rid: str, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rid,
        "object": "realtime.response",
        "status": status,
        "output": output,
        "conversation_id": "conv_sample",
        "output_modalities": ["audio"],
    }
    if status != "in_progress":
        body["usage"] = _usage()
    body.update(extra)
    return body


def text_turn(
    user_text: str = "Hello there", reply: str = "Hi! How can I help?", previous_item_id: str | None = None
) -> list[dict[str, Any]]:
    """User text item then a text response: the §6.1 order, ending with rate_limits.updated."""
    user = {
        "id": "item_user1",
        "type": "message",
        "role": "user",
        "status": "completed",
        "object": "realtime.item",
        "content": [{"type": "input_text", "text": user_text}],
    }
    base = {"response_id": "resp_text1", "item_id": "item_asst1", "output_index": 0, "content_index": 0}
    asst_open = {
        "id": "item_asst1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "object": "realtime.item",
        "content": [],
    }
    asst_done = {**asst_open, "status": "completed", "content": [{"type": "output_text", "text": reply}]}
    words = reply.split(" ")
    deltas = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    return [
        {
            "type": "conversation.item.added",
            "event_id": _eid(),
            "previous_item_id": previous_item_id,
            "item": user,
        },
        {
            "type": "conversation.item.done",
            "event_id": _eid(),
            "previous_item_id": previous_item_id,
            "item": user,
        },
        {
            "type": "response.created",
            "event_id": _eid(),
            "response": _response("resp_text1", "in_progress", []),
        },
        {
            "type": "response.output_item.added",
            "event_id": _eid(),
            "response_id": "resp_text1",
            "output_index": 0,
            "item": asst_open,
        },
        {
            "type": "conversation.item.added",
            "event_id": _eid(),
            "previous_item_id": "item_user1",
            "item": asst_open,
        },
        {
            "type": "response.content_part.added",
            "event_id": _eid(),
            **base,
            "part": {"type": "text", "text": ""},
        },
        *({"type": "response.output_text.delta", "event_id": _eid(), **base, "delta": d} for d in deltas),
        {"type": "response.output_text.done", "event_id": _eid(), **base, "text": reply},
        {
            "type": "response.content_part.done",
            "event_id": _eid(),
            **base,
            "part": {"type": "text", "text": reply},
        },
        {
            "type": "conversation.item.done",
            "event_id": _eid(),
            "previous_item_id": "item_user1",
            "item": asst_done,
        },
        {
            "type": "response.output_item.done",
            "event_id": _eid(),
            "response_id": "resp_text1",
            "output_index": 0,
            "item": asst_done,
        },
        {
            "type": "response.done",
            "event_id": _eid(),
            "response": _response("resp_text1", "completed", [asst_done], output_modalities=["text"]),
        },
        {
            "type": "rate_limits.updated",
            "event_id": _eid(),
            "rate_limits": [{"name": "tokens", "limit": 40000, "remaining": 39970, "reset_seconds": 0.05}],
        },
    ]


def audio_chunks_b64(pcm16: bytes, chunk_bytes: int = 4800) -> Iterator[str]:
    """Split PCM16 bytes into base64 chunks (4800 bytes = 100 ms at 24 kHz)."""
    for start in range(0, len(pcm16), chunk_bytes):
        yield b64encode(pcm16[start : start + chunk_bytes])


def audio_turn(
    reply_pcm16: bytes,
    transcript: str = "Sure, one moment.",
    *,
    user_transcript: str | None = "what time is it",
    response_id: str = "resp_audio1",
    user_id: str = "item_user2",
    assistant_id: str = "item_asst2",
    previous_item_id: str | None = None,
    status: str = "completed",
    end: bool = True,
) -> list[dict[str, Any]]:
    """A server-VAD audio turn (§6.2): VAD, commit, user item, audio response with interleaved deltas.

    With `end=False` the sequence stops after the audio deltas (for interruption tests).
    """
    base = {"response_id": response_id, "item_id": assistant_id, "output_index": 0, "content_index": 0}
    user = {
        "id": user_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "object": "realtime.item",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    asst_open = {
        "id": assistant_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "object": "realtime.item",
        "content": [],
    }
    asst_done = {
        **asst_open,
        "status": "completed" if status == "completed" else "incomplete",
        "content": [{"type": "output_audio", "transcript": transcript}],
    }
    events: list[dict[str, Any]] = [
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": _eid(),
            "audio_start_ms": 1000,
            "item_id": user_id,
        },
        {
            "type": "input_audio_buffer.speech_stopped",
            "event_id": _eid(),
            "audio_end_ms": 2500,
            "item_id": user_id,
        },
        {
            "type": "input_audio_buffer.committed",
            "event_id": _eid(),
            "item_id": user_id,
            "previous_item_id": previous_item_id,
        },
        {
            "type": "conversation.item.added",
            "event_id": _eid(),
            "previous_item_id": previous_item_id,
            "item": user,
        },
        {
            "type": "conversation.item.done",
            "event_id": _eid(),
            "previous_item_id": previous_item_id,
            "item": user,
        },
        {
            "type": "response.created",
            "event_id": _eid(),
            "response": _response(response_id, "in_progress", []),
        },
        {
            "type": "response.output_item.added",
            "event_id": _eid(),
            "response_id": response_id,
            "output_index": 0,
            "item": asst_open,
        },
        {
            "type": "conversation.item.added",
            "event_id": _eid(),
            "previous_item_id": user_id,
            "item": asst_open,
        },
        {
            "type": "response.content_part.added",
            "event_id": _eid(),
            **base,
            "part": {"type": "audio", "transcript": ""},
        },
    ]
    words = transcript.split(" ")
    chunks = list(audio_chunks_b64(reply_pcm16))
    for i in range(max(len(words), len(chunks))):
        if i < len(words):
            delta = words[i] + (" " if i < len(words) - 1 else "")
            events.append(
                {"type": "response.output_audio_transcript.delta", "event_id": _eid(), **base, "delta": delta}
            )
        if i < len(chunks):
            events.append(
                {"type": "response.output_audio.delta", "event_id": _eid(), **base, "delta": chunks[i]}
            )
    if not end:
        return events
    events += [
        {"type": "response.output_audio.done", "event_id": _eid(), **base},
        {
            "type": "response.output_audio_transcript.done",
            "event_id": _eid(),
            **base,
            "transcript": transcript,
        },
        {
            "type": "response.content_part.done",
            "event_id": _eid(),
            **base,
            "part": {"type": "audio", "transcript": transcript},
        },
        {
            "type": "conversation.item.done",
            "event_id": _eid(),
            "previous_item_id": user_id,
            "item": asst_done,
        },
        {
            "type": "response.output_item.done",
            "event_id": _eid(),
            "response_id": response_id,
            "output_index": 0,
            "item": asst_done,
        },
        {
            "type": "response.done",
            "event_id": _eid(),
            "response": _response(response_id, status, [asst_done]),
        },
    ]
    if user_transcript is not None:
        events += [
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "event_id": _eid(),
                "item_id": user_id,
                "content_index": 0,
                "delta": user_transcript[:4],
            },
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": _eid(),
                "item_id": user_id,
                "content_index": 0,
                "transcript": user_transcript,
                "usage": {"type": "duration", "seconds": 1.5},
            },
        ]
    return events


def function_call_turn(
    name: str = "get_weather",
    arguments: str = '{"city":"Paris"}',
    *,
    call_id: str = "call_sample00000001",
    item_id: str = "item_call1",
    response_id: str = "resp_call1",
    previous_item_id: str | None = None,
) -> list[dict[str, Any]]:
    """A response that calls one function tool (§7)."""
    open_item = {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "object": "realtime.item",
        "name": name,
        "call_id": call_id,
        "arguments": "",
    }
    done_item = {**open_item, "status": "completed", "arguments": arguments}
    base = {"response_id": response_id, "item_id": item_id, "output_index": 0, "call_id": call_id}
    half = len(arguments) // 2
    added: dict[str, Any] = {"type": "conversation.item.added", "event_id": _eid(), "item": open_item}
    done: dict[str, Any] = {"type": "conversation.item.done", "event_id": _eid(), "item": done_item}
    if previous_item_id is not None:
        added["previous_item_id"] = done["previous_item_id"] = previous_item_id
    return [
        {
            "type": "response.created",
            "event_id": _eid(),
            "response": _response(response_id, "in_progress", []),
        },
        {
            "type": "response.output_item.added",
            "event_id": _eid(),
            "response_id": response_id,
            "output_index": 0,
            "item": open_item,
        },
        added,
        {
            "type": "response.function_call_arguments.delta",
            "event_id": _eid(),
            **base,
            "delta": arguments[:half],
        },
        {
            "type": "response.function_call_arguments.delta",
            "event_id": _eid(),
            **base,
            "delta": arguments[half:],
        },
        {
            "type": "response.function_call_arguments.done",
            "event_id": _eid(),
            **base,
            "name": name,
            "arguments": arguments,
        },
        done,
        {
            "type": "response.output_item.done",
            "event_id": _eid(),
            "response_id": response_id,
            "output_index": 0,
            "item": done_item,
        },
        {
            "type": "response.done",
            "event_id": _eid(),
            "response": _response(response_id, "completed", [done_item]),
        },
    ]


def error_event(
    message: str, code: str | None = None, error_type: str = "invalid_request_error"
) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": _eid(),
        "error": {"type": error_type, "code": code, "message": message, "param": None, "event_id": None},
    }


__all__ = [
    "audio_chunks_b64",
    "audio_turn",
    "error_event",
    "function_call_turn",
    "session_created",
    "text_turn",
]
