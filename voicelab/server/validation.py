"""Checks the real server applies to `session.update`, and how an update is merged into the session.

The openai models allow extra fields, the real server does not: an unknown key anywhere in `session` gives
`unknown_parameter` with its path (e.g. `session.audio.input.bogus`) and the whole update is
discarded. Values are
then validated with the openai models themselves plus the range rules the API documents.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from openai.types.realtime import RealtimeSessionCreateRequest, RealtimeTranscriptionSessionCreateRequest
from pydantic import BaseModel, ValidationError

from voicelab.errors import RemoteProtocolError
from voicelab.protocol.session_update import merge_session_update

DEFAULT_INSTRUCTIONS = (
    "You are talking to voicelab's embedded Realtime server. It is not a language model: every "
    "reply comes from "
    "a script, a recording or an echo chosen when the server was started, and the audio is "
    "synthesized offline."
)
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
SESSION_LIFETIME_S = 3600
SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
PCM_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}


@dataclass
class ClientEventError(RemoteProtocolError):
    """A client event the real server would answer with an `error` event (the connection stays open)."""

    code: str | None
    message: str
    param: str | None = None
    type: str = "invalid_request_error"

    def __str__(self) -> str:
        return self.message


# the model names openai's SDK lists, and newer names of the same families (the real API answers anything
# else with `invalid_model` and closes 4000)
REALTIME_MODELS: tuple[str, ...] = tuple(
    name
    for arg in typing.get_args(RealtimeSessionCreateRequest.model_fields["model"].annotation)
    if typing.get_origin(arg) is typing.Literal
    for name in typing.get_args(arg)
)
_MODEL_FAMILIES = ("gpt-realtime", "gpt-4o-realtime-", "gpt-4o-mini-realtime-", "gpt-audio-")
_MODEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def model_problem(model: str) -> str | None:
    """Why the real API would refuse `?model=<model>` (the `invalid_model` message), or None if it is a
    Realtime model."""
    if model in REALTIME_MODELS:
        return None
    if model.startswith(_MODEL_FAMILIES) and set(model) <= _MODEL_CHARS:
        return None
    known = ", ".join(sorted(REALTIME_MODELS)[:6])
    return (
        f"Invalid model: {model!r} is not a Realtime model. Connect with ?model= one of the Realtime models, "
        f"e.g. gpt-realtime or gpt-realtime-mini (known: {known}, ...)."
    )


DEFAULT_TRANSCRIPTION: dict[str, Any] = {"model": "gpt-4o-transcribe", "language": None, "prompt": ""}


def default_transcription_session(session_id: str, now_s: float) -> dict[str, Any]:
    """The session body of `session.created` for `/v1/realtime?intent=transcription` (session.type
    "transcription"): input audio only, transcribed per turn; no responses."""
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "expires_at": int(now_s) + SESSION_LIFETIME_S,
        "include": None,
        "audio": {
            "input": {
                "format": dict(PCM_FORMAT),
                "transcription": dict(DEFAULT_TRANSCRIPTION),
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            }
        },
    }


def default_session(model: str, session_id: str, now_s: float) -> dict[str, Any]:
    """The session body of `session.created`, as the real server sends it (PROTOCOL.md §10)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(now_s) + SESSION_LIFETIME_S,
        "include": None,
        "audio": {
            "input": {
                "format": dict(PCM_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(SERVER_VAD_DEFAULTS),
            },
            "output": {"format": dict(PCM_FORMAT), "voice": "alloy", "speed": 1.0},
        },
    }


# --- unknown parameters -------------------------------------------------------------------------------


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation allows (through Optional, Union, Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_model_classes(arg))
        return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _list_item(annotation: Any) -> Any | None:
    """The element annotation when the annotation allows a list, else None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _list_item(typing.get_args(annotation)[0])
    if origin in (list, typing.List):  # noqa: UP006
        return typing.get_args(annotation)[0]
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            inner = _list_item(arg)
            if inner is not None:
                return inner
    return None


def _literal_matches(model: type[BaseModel], key: str, tag: Any) -> bool:
    field = model.model_fields.get(key)
    if field is None:
        return True
    literals: list[Any] = []
    stack = [field.annotation]
    while stack:
        ann = stack.pop()
        if typing.get_origin(ann) is typing.Literal:
            literals.extend(typing.get_args(ann))
        else:
            stack.extend(typing.get_args(ann))
    return not literals or tag in literals


def find_unknown_parameter(value: Any, annotation: Any, path: str) -> str | None:
    """The path of the first key in `value` that `annotation` does not declare, or None."""
    if isinstance(value, dict):
        models = _model_classes(annotation)
        if not models:
            return None  # free-form (metadata, JSON schema, prompt variables)
        for key in ("type", "role"):  # the tags that tell union members apart
            if key in value:
                models = [m for m in models if _literal_matches(m, key, value[key])] or models
        for key, inner in value.items():
            holder = next((m for m in models if key in m.model_fields), None)
            if holder is None:
                return f"{path}.{key}"
            found = find_unknown_parameter(inner, holder.model_fields[key].annotation, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        element = _list_item(annotation)
        if element is not None:
            for index, inner in enumerate(value):
                found = find_unknown_parameter(inner, element, f"{path}[{index}]")
                if found:
                    return found
    return None


# --- values -------------------------------------------------------------------------------------------


def _path(prefix: str, loc: tuple[Any, ...], value: Any) -> str:
    """The dotted path of a pydantic error location, keeping only parts that exist in the sent value."""
    text = prefix
    for part in loc:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            text += f"[{part}]"
            value = value[part]
        elif isinstance(value, dict) and part in value:
            text += f".{part}"
            value = value[part]
    return text


def _dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else {} (its type is reported by the model validation that follows)."""
    return value if isinstance(value, dict) else {}


def _check_ranges(session: dict[str, Any], prefix: str = "session") -> None:
    audio = _dict(session.get("audio"))
    for direction in ("input", "output"):
        fmt = _dict(audio.get(direction)).get("format")
        if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm":
            rate = fmt.get("rate", 24000)
            if isinstance(rate, int) and rate < 24000:
                raise ClientEventError(
                    "integer_below_min_value",
                    f"Invalid '{prefix}.audio.{direction}.format.rate': integer below minimum "
                    "value. Expected a "
                    f"value >= 24000, but got {rate} instead.",
                    f"{prefix}.audio.{direction}.format.rate",
                )
    output = _dict(audio.get("output"))
    voice = output.get("voice")
    if isinstance(voice, str) and voice not in VOICES:
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: '{voice}'. Supported values are: {', '.join(repr(v) for v in VOICES)}.",
            f"{prefix}.audio.output.voice",
        )
    speed = output.get("speed")
    if isinstance(speed, (int, float)) and not 0.25 <= speed <= 1.5:
        raise ClientEventError(
            "invalid_value",
            f"Invalid '{prefix}.audio.output.speed': {speed}; use 0.25 to 1.5.",
            f"{prefix}.audio.output.speed",
        )
    detection = _dict(audio.get("input")).get("turn_detection")
    if isinstance(detection, dict):
        threshold = detection.get("threshold")
        if isinstance(threshold, (int, float)) and not 0.0 <= threshold <= 1.0:
            raise ClientEventError(
                "invalid_value",
                f"Invalid '{prefix}.audio.input.turn_detection.threshold': {threshold}; use 0.0 to 1.0.",
                f"{prefix}.audio.input.turn_detection.threshold",
            )
        for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
            number = detection.get(key)
            if isinstance(number, int) and number < 0:
                raise ClientEventError(
                    "integer_below_min_value",
                    f"Invalid '{prefix}.audio.input.turn_detection.{key}': {number}; use a value >= 0.",
                    f"{prefix}.audio.input.turn_detection.{key}",
                )
    modalities = session.get("output_modalities")
    if isinstance(modalities, list) and len(modalities) != 1:
        raise ClientEventError(
            "invalid_value",
            f"Invalid '{prefix}.output_modalities': use exactly one of ['audio'] or ['text'].",
            f"{prefix}.output_modalities",
        )
    tokens = session.get("max_output_tokens")
    if isinstance(tokens, int) and not 1 <= tokens <= 4096:
        raise ClientEventError(
            "invalid_value",
            f"Invalid '{prefix}.max_output_tokens': {tokens}; use an integer from 1 to 4096 or 'inf'.",
            f"{prefix}.max_output_tokens",
        )


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_JSON_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
}


def _check_tools(body: dict[str, Any], prefix: str) -> None:
    """Function tools as the real API checks them: a name of 1-64 letters, digits, '_' or '-', and
    `parameters` a JSON schema object."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return
    for index, entry in enumerate(tools):
        if not isinstance(entry, dict) or entry.get("type", "function") != "function":
            continue
        where = f"{prefix}.tools[{index}]"
        name = entry.get("name")
        if isinstance(name, str) and not _TOOL_NAME.match(name):
            raise ClientEventError(
                "invalid_value",
                f"Invalid '{where}.name': string does not match pattern. Expected a string that matches the "
                "pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                f"{where}.name",
            )
        parameters = entry.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            got = _JSON_TYPE_NAMES.get(type(parameters), type(parameters).__name__)
            raise ClientEventError(
                "invalid_type",
                f"Invalid type for '{where}.parameters': expected an object (a JSON schema), but got {got} "
                "instead.",
                f"{where}.parameters",
            )


def check_response_params(params: dict[str, Any]) -> None:
    """Raise ClientEventError for `response.create.response` values the real server rejects (the same ranges
    and tool rules as a session: voice, max_output_tokens, output_modalities, tools)."""
    entries = params.get("input")
    if entries is not None and not isinstance(entries, list):
        raise ClientEventError(
            "invalid_type",
            "Invalid type for 'response.input': expected an array of items or item references.",
            "response.input",
        )
    _check_ranges(params, "response")
    _check_tools(params, "response")


def check_session_update(session: Any, current_type: str) -> None:
    """Raise ClientEventError for what the real server rejects in `session.update.session`."""
    if not isinstance(session, dict):
        raise ClientEventError("invalid_type", "Invalid type for 'session': expected an object.", "session")
    if "type" not in session:
        raise ClientEventError(
            "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
        )
    if session["type"] != current_type:
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: '{session['type']}'. This is a '{current_type}' session; session.type "
            "cannot change.",
            "session.type",
        )
    model: type[BaseModel] = (
        RealtimeTranscriptionSessionCreateRequest
        if current_type == "transcription"
        else RealtimeSessionCreateRequest
    )
    unknown = find_unknown_parameter(session, model, "session")
    if unknown:
        raise ClientEventError("unknown_parameter", f"Unknown parameter: '{unknown}'.", unknown)
    _check_ranges(session)
    _check_tools(session, "session")
    try:
        model.model_validate(session)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _path("session", tuple(first["loc"]), session)
        raise ClientEventError(
            "invalid_value", f"Invalid value for '{param}': {first['msg']}.", param
        ) from None


def _fill_turn_detection(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    defaults = SEMANTIC_VAD_DEFAULTS if value.get("type") == "semantic_vad" else SERVER_VAD_DEFAULTS
    return {**defaults, **value}


def _normalize(direction: str, field: str, value: Any) -> Any:
    """What the server stores for an updated audio field: turn detection with its defaults, a PCM format with
    its rate."""
    if field == "turn_detection":
        return _fill_turn_detection(value)
    if field == "format" and isinstance(value, dict) and value.get("type", "audio/pcm") == "audio/pcm":
        return {"type": "audio/pcm", "rate": value.get("rate", 24000)}
    return value


def merge_session(effective: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The session after `update`: the client's own merge rule (voicelab.protocol.session_update), then the
    server's defaults for turn detection and PCM formats."""
    return merge_session_update(effective, update, _normalize)


def voice_of(session: dict[str, Any]) -> Any:
    return ((session.get("audio") or {}).get("output") or {}).get("voice", "alloy")
