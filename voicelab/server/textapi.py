"""The Responses and Chat Completions APIs of the embedded server, sans I/O: a request body in, the response
body or its stream of events out. The brain decides, through the same `brain_input` and `decide` as the
Realtime engine; function calls are answered like in a Realtime session (the call's rule note is kept by
call_id, so a `say` template can use the tool output on the next request).

    api = TextApi(lambda: brain)
    body = api.response(request)                   # POST /v1/responses (stream: api.response_events)
    body = api.chat(request)                       # POST /v1/chat/completions (stream: api.chat_chunks)

Bad requests raise `ApiError` with the real API's status, message, param and code.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from voicelab.server.brains import Brain, Call, Say
from voicelab.server.engine import brain_input, decide
from voicelab.server.responses import text_tokens

RESPONSE_PARAMS = frozenset(response_create_params.ResponseCreateParamsBase.__annotations__) | {"stream"}
CHAT_PARAMS = frozenset(completion_create_params.CompletionCreateParamsBase.__annotations__) | {"stream"}
MAX_STORED = 512  # responses kept for previous_response_id, and call notes kept for function outputs
_WORDS = re.compile(r"\S+\s*")


@dataclass
class ApiError(Exception):
    """An HTTP error as the real API reports it: `{"error": {message, type, param, code}}` with a status."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    type: str = "invalid_request_error"

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


def _id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def words(text: str) -> list[str]:
    """Text split into streamed deltas (a word and the space after it); joined they give the text back."""
    return _WORDS.findall(text) or ([text] if text else [])


def _require(body: Mapping[str, Any], name: str) -> Any:
    if body.get(name) is None:
        raise ApiError(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    return body[name]


def _unknown(body: Mapping[str, Any], allowed: frozenset[str], chat: bool) -> None:
    for key in body:
        if key not in allowed:
            if chat:
                raise ApiError(400, f"Unrecognized request argument supplied: {key}", None, None)
            raise ApiError(400, f"Unknown parameter: '{key}'.", key, "unknown_parameter")


def _text_of(content: Any, where: str) -> str:
    """A message's content (a string or a list of text parts) as text."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise ApiError(400, f"Invalid type for '{where}': expected a string or an array of parts.", where)
    parts = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("refusal"), str):
            parts.append(part["refusal"])
    return " ".join(parts)


def _function_names(tools: Any, chat: bool) -> tuple[str, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise ApiError(400, "Invalid type for 'tools': expected an array of tools.", "tools", "invalid_type")
    names = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        spec = tool.get("function") if chat else tool
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not name:
            where = f"tools[{index}].function.name" if chat else f"tools[{index}].name"
            raise ApiError(
                400, f"Missing required parameter: '{where}'.", where, "missing_required_parameter"
            )
        names.append(name)
    return tuple(names)


def _chosen(names: tuple[str, ...], choice: Any, chat: bool) -> tuple[str, ...]:
    if choice == "none":
        return ()
    if isinstance(choice, dict) and choice.get("type") == "function":
        wanted = (choice.get("function") or {}).get("name") if chat else choice.get("name")
        return tuple(n for n in names if n == wanted)
    return names


class TextApi:
    """Responses and Chat Completions over a brain; see the module docstring."""

    def __init__(self, brain: Callable[[], Brain], clock: Callable[[], float] = time.time) -> None:
        self._brain = brain
        self._clock = clock
        self._notes: OrderedDict[str, Any] = OrderedDict()
        self._stored: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # --- shared -----------------------------------------------------------------------------------------

    def _decide(self, items: list[dict[str, Any]], instructions: str, tools: tuple[str, ...]) -> Say | Call:
        context = brain_input(items, instructions, tools, self._notes)
        return decide(self._brain(), context)

    def _keep(self, store: OrderedDict[str, Any], key: str, value: Any) -> None:
        store[key] = value
        while len(store) > MAX_STORED:
            store.popitem(last=False)

    def _new_call(self, reply: Call) -> str:
        call_id = _id("call_")
        self._keep(self._notes, call_id, reply.note)
        return call_id

    # --- Responses --------------------------------------------------------------------------------------

    def _response_items(self, body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The conversation as Realtime-shaped items (plus stored ones for previous_response_id), and the
        instructions."""
        items: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            if previous not in self._stored:
                raise ApiError(
                    400,
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            items.extend(self._stored[previous])
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise ApiError(400, "Invalid type for 'instructions': expected a string.", "instructions")
        extra: list[str] = [instructions] if instructions else []
        raw = body.get("input")
        if isinstance(raw, str):
            items.append(_user(raw))
        elif isinstance(raw, list):
            for index, entry in enumerate(raw):
                if not isinstance(entry, dict):
                    raise ApiError(
                        400, f"Invalid type for 'input[{index}]': expected an object.", f"input[{index}]"
                    )
                kind = entry.get("type", "message")
                if kind == "message":
                    role = entry.get("role")
                    text = _text_of(entry.get("content"), f"input[{index}].content")
                    if role in ("system", "developer"):
                        extra.append(text)
                    elif role in ("user", "assistant"):
                        items.append(_user(text) if role == "user" else _assistant(text))
                    else:
                        raise ApiError(
                            400,
                            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', "
                            "and 'developer'.",
                            f"input[{index}].role",
                            "invalid_value",
                        )
                elif kind == "function_call":
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": entry.get("call_id"),
                            "name": entry.get("name"),
                            "arguments": entry.get("arguments") or "",
                        }
                    )
                elif kind == "function_call_output":
                    output = entry.get("output")
                    items.append(
                        {
                            "type": "function_call_output",
                            "call_id": entry.get("call_id"),
                            "output": output if isinstance(output, str) else json.dumps(output),
                        }
                    )
                # other item types (reasoning, web search...) carry nothing a brain reads
        elif raw is not None:
            raise ApiError(
                400, "Invalid type for 'input': expected a string or an array.", "input", "invalid_type"
            )
        return items, "\n".join(extra)

    def _check_response(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        _unknown(body, RESPONSE_PARAMS, chat=False)
        _require(body, "model")

    def response_events(self, body: Any) -> Iterator[dict[str, Any]]:
        """The server-sent events of a streamed `POST /v1/responses` (each a ResponseStreamEvent dict)."""
        self._check_response(body)
        items, instructions = self._response_items(body)
        names = _function_names(body.get("tools"), chat=False)
        reply = self._decide(items, instructions, _chosen(names, body.get("tool_choice"), chat=False))
        response = self._response_shell(body, instructions)
        sequence = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> dict[str, Any]:
            return {"type": kind, "sequence_number": next(sequence), **fields}

        yield event("response.created", response=dict(response))
        yield event("response.in_progress", response=dict(response))
        if isinstance(reply, Call):
            call_id = self._new_call(reply)
            arguments = json.dumps(dict(reply.arguments))
            item = {
                "type": "function_call", "id": _id("fc_"), "call_id": call_id, "name": reply.name,
                "arguments": arguments, "status": "completed",
            }  # fmt: skip
            yield event(
                "response.output_item.added",
                output_index=0,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            yield event(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=arguments
            )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"], output_index=0, arguments=arguments, name=reply.name,
            )  # fmt: skip
            yield event("response.output_item.done", output_index=0, item=item)
            output_text = arguments
        else:
            item_id = _id("msg_")
            text = reply.text
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            base = {"type": "message", "id": item_id, "role": "assistant"}
            yield event(
                "response.output_item.added",
                output_index=0,
                item={**base, "status": "in_progress", "content": []},
            )
            yield event(
                "response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part
            )
            for delta in words(text):
                yield event(
                    "response.output_text.delta",
                    item_id=item_id, output_index=0, content_index=0, delta=delta, logprobs=[],
                )  # fmt: skip
            done_part = {**part, "text": text}
            yield event(
                "response.output_text.done",
                item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[],
            )  # fmt: skip
            yield event(
                "response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=done_part
            )
            item = {**base, "status": "completed", "content": [done_part]}  # type: ignore[dict-item]
            yield event("response.output_item.done", output_index=0, item=item)
            output_text = text
        input_tokens = text_tokens(instructions) + sum(text_tokens(_item_text(i)) for i in items)
        response.update(
            status="completed",
            output=[item],
            usage={
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": text_tokens(output_text),
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + text_tokens(output_text),
            },
        )
        if body.get("store", True) is not False:
            self._keep(self._stored, response["id"], [*items, _realtime_item(item)])
        yield event("response.completed", response=response)

    def response(self, body: Any) -> dict[str, Any]:
        """The body of a `POST /v1/responses` without streaming (an openai `Response`)."""
        last: dict[str, Any] = {}
        for event in self.response_events(body):
            last = event
        return dict(last["response"])

    def _response_shell(self, body: Mapping[str, Any], instructions: str) -> dict[str, Any]:
        return {
            "id": _id("resp_"),
            "object": "response",
            "created_at": int(self._clock()),
            "status": "in_progress",
            "model": str(body.get("model")),
            "output": [],
            "instructions": body.get("instructions"),
            "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
            "tool_choice": body.get("tool_choice") or "auto",
            "tools": list(body.get("tools") or []),
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "max_output_tokens": body.get("max_output_tokens"),
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "metadata": body.get("metadata") or {},
            "text": body.get("text") or {"format": {"type": "text"}},
            "truncation": body.get("truncation") or "disabled",
            "error": None,
            "incomplete_details": None,
            "usage": None,
        }

    # --- Chat Completions -------------------------------------------------------------------------------

    def _chat_items(self, body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
        messages = _require(body, "messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(
                400, "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages",
                "empty_array",
            )  # fmt: skip
        items: list[dict[str, Any]] = []
        extra: list[str] = []
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            if not isinstance(message, dict) or "role" not in message:
                raise ApiError(400, f"Missing required parameter: '{where}.role'.", f"{where}.role")
            role = message["role"]
            text = _text_of(message.get("content"), f"{where}.content")
            if role in ("system", "developer"):
                extra.append(text)
            elif role == "user":
                items.append(_user(text))
            elif role == "assistant":
                if text:
                    items.append(_assistant(text))
                for call in message.get("tool_calls") or []:
                    function = call.get("function") or {}
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": call.get("id"),
                            "name": function.get("name"),
                            "arguments": function.get("arguments") or "",
                        }
                    )
            elif role in ("tool", "function"):
                items.append(
                    {"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": text}
                )
            else:
                raise ApiError(
                    400,
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                    "'function', 'tool', and 'developer'.",
                    f"{where}.role",
                    "invalid_value",
                )
        return items, "\n".join(extra)

    def _chat_reply(self, body: Any) -> tuple[Say | Call, list[dict[str, Any]], str]:
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        _unknown(body, CHAT_PARAMS, chat=True)
        _require(body, "model")
        items, instructions = self._chat_items(body)
        names = _function_names(body.get("tools"), chat=True)
        reply = self._decide(items, instructions, _chosen(names, body.get("tool_choice"), chat=True))
        return reply, items, instructions

    def _usage(self, items: list[dict[str, Any]], instructions: str, output: str) -> dict[str, Any]:
        prompt = text_tokens(instructions) + sum(text_tokens(_item_text(i)) for i in items)
        completion = text_tokens(output)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def chat(self, body: Any) -> dict[str, Any]:
        """The body of a `POST /v1/chat/completions` without streaming (an openai `ChatCompletion`)."""
        reply, items, instructions = self._chat_reply(body)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(reply, Call):
            arguments = json.dumps(dict(reply.arguments))
            message["tool_calls"] = [
                {
                    "id": self._new_call(reply),
                    "type": "function",
                    "function": {"name": reply.name, "arguments": arguments},
                }
            ]
            finish, output = "tool_calls", arguments
        else:
            message["content"] = reply.text
            finish, output = "stop", reply.text
        return {
            "id": _id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(self._clock()),
            "model": str(body["model"]),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": self._usage(items, instructions, output),
        }

    def chat_chunks(self, body: Any) -> Iterator[dict[str, Any]]:
        """The chunks of a streamed `POST /v1/chat/completions` (each a `ChatCompletionChunk` dict)."""
        reply, items, instructions = self._chat_reply(body)
        base = {
            "id": _id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(self._clock()),
            "model": str(body["model"]),
        }  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }

        if isinstance(reply, Call):
            arguments = json.dumps(dict(reply.arguments))
            call = {
                "index": 0, "id": self._new_call(reply), "type": "function",
                "function": {"name": reply.name, "arguments": arguments},
            }  # fmt: skip
            yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
            yield chunk({}, "tool_calls")
            output = arguments
        else:
            yield chunk({"role": "assistant", "content": ""})
            for delta in words(reply.text):
                yield chunk({"content": delta})
            yield chunk({}, "stop")
            output = reply.text
        options = body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            yield {**base, "choices": [], "usage": self._usage(items, instructions, output)}


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _assistant(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def _realtime_item(output: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses output item as a conversation item for a later previous_response_id."""
    if output.get("type") == "function_call":
        return {k: output[k] for k in ("type", "call_id", "name", "arguments")}
    return _assistant(_text_of(output.get("content"), "output"))


def _item_text(item: Mapping[str, Any]) -> str:
    if item.get("type") == "message":
        return _text_of(item.get("content"), "content")
    return str(item.get("arguments") or item.get("output") or "")


__all__ = ["ApiError", "TextApi", "words"]
