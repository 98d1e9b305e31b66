"""`SessionConfig`: the settings of a Realtime session, turned into the GA `session.update` payload."""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from openai.types.realtime import RealtimeSessionCreateRequest
from pydantic import ValidationError

from voicelab.checks import checked, checked_class, text, unknown_fields
from voicelab.errors import ConfigError
from voicelab.protocol.events import client_event

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
MODALITIES = (["audio"], ["text"])
NOISE_REDUCTION = ("near_field", "far_field")
EAGERNESS = ("low", "medium", "high", "auto")
TOOL_CHOICES = ("auto", "none", "required")
_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "pcm": {"type": "audio/pcm", "rate": 24000},
    "audio/pcm": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "pcmu": {"type": "audio/pcmu"},
    "audio/pcmu": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
    "pcma": {"type": "audio/pcma"},
    "audio/pcma": {"type": "audio/pcma"},
}
_SERVER_VAD_KEYS = {
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "create_response",
    "interrupt_response",
    "idle_timeout_ms",
}
_SEMANTIC_VAD_KEYS = {"type", "eagerness", "create_response", "interrupt_response"}
MAX_MS = 600_000  # ten minutes: a longer padding, silence or idle timeout means nothing for a turn
_TRANSCRIPTION_KEYS = {"model", "language", "languages", "prompt", "keywords", "delay"}
_FUNCTION_TOOL_KEYS = {"type", "name", "description", "parameters"}
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$")


def audio_format(value: Any, field_name: str = "input_format") -> dict[str, Any]:
    """Normalise "pcm16" | "g711_ulaw" | "g711_alaw" (or a GA format object) to the GA object."""
    if isinstance(value, str):
        found = _FORMATS.get(value)
    elif isinstance(value, dict):
        found = _FORMATS.get(str(value.get("type")))
        if found is not None and value.get("type") == "audio/pcm" and value.get("rate", 24000) != 24000:
            raise ConfigError(
                f"{field_name}: audio/pcm rate {value.get('rate')} is not supported; the Realtime API takes "
                "24000 Hz PCM16 (voicelab resamples for you)."
            )
    else:
        found = None
    if found is None:
        raise ConfigError(
            f"{field_name}={value!r} is not an audio format; use 'pcm16', 'g711_ulaw' or 'g711_alaw' "
            "(or a GA object such as {'type': 'audio/pcm', 'rate': 24000})."
        )
    return dict(found)


def format_name(value: Any) -> str:
    """The short name ("pcm16", "g711_ulaw", "g711_alaw") of any accepted format spelling."""
    kind = audio_format(value)["type"]
    return {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}[kind]


def _turn_detection(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) and hasattr(value, "threshold") and hasattr(value, "silence_duration_ms"):
        value = {
            "type": "server_vad",
            "threshold": value.threshold,
            "prefix_padding_ms": value.prefix_padding_ms,
            "silence_duration_ms": value.silence_duration_ms,
        }
    if not isinstance(value, dict):
        raise ConfigError(
            f"turn_detection={value!r} is not valid; use None (push to talk), {{'type': 'server_vad', ...}}, "
            "{'type': 'semantic_vad', ...} or a voicelab.TurnDetection."
        )
    td = dict(value)
    kind = td.get("type")
    if kind == "server_vad":
        allowed = _SERVER_VAD_KEYS
        threshold = td.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ConfigError(f"turn_detection.threshold={threshold!r} must be a number from 0.0 to 1.0.")
        for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
            v = td.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ConfigError(f"turn_detection.{key}={v!r} must be a whole number of milliseconds >= 0.")
            if v is not None and v > MAX_MS:
                raise ConfigError(
                    f"turn_detection.{key}={v!r} is out of range: at most {MAX_MS} ms (ten minutes); "
                    "e.g. 500."
                )
    elif kind == "semantic_vad":
        allowed = _SEMANTIC_VAD_KEYS
        if td.get("eagerness", "auto") not in EAGERNESS:
            raise ConfigError(
                f"turn_detection.eagerness={td.get('eagerness')!r} is not valid; "
                f"use one of {', '.join(EAGERNESS)}."
            )
    else:
        raise ConfigError(f"turn_detection.type={kind!r} is not valid; use 'server_vad' or 'semantic_vad'.")
    unknown = set(td) - allowed
    if unknown:
        raise ConfigError(
            f"turn_detection has unknown field(s) {sorted(unknown)} for {kind}; allowed: {sorted(allowed)}."
        )
    for key in ("create_response", "interrupt_response"):
        if key in td and not isinstance(td[key], bool):
            raise ConfigError(f"turn_detection.{key}={td[key]!r} must be True or False.")
    return td


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def check_field_names(changes: Mapping[str, Any], where: str) -> None:
    """ConfigError for a key that is not a SessionConfig field, with the closest field name."""
    unknown_fields(changes, [f.name for f in fields(SessionConfig)], f"{where}: SessionConfig")


def _check_transcription(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or not value.get("model"):
        raise ConfigError(
            f"transcription={value!r} must be None or a dict with a 'model', e.g. "
            "{'model': 'gpt-4o-mini-transcribe'}."
        )
    unknown = sorted(set(value) - _TRANSCRIPTION_KEYS)
    if unknown:
        raise ConfigError(
            f"transcription has unknown field(s) {unknown}; allowed: {sorted(_TRANSCRIPTION_KEYS)}, e.g. "
            "{'model': 'gpt-4o-mini-transcribe', 'language': 'en'}."
        )
    for key in ("model", "language", "prompt", "delay"):
        if key in value:
            text(
                value[key],
                f"transcription.{key}",
                empty=key == "prompt",
                example="gpt-4o-mini-transcribe" if key == "model" else None,
            )


def _check_tool_dict(i: int, tool: Any) -> None:
    from voicelab.agents.tools import validate_parameters_schema

    if not isinstance(tool, dict) or tool.get("type") != "function" or not tool.get("name"):
        raise ConfigError(
            f"tools[{i}] must be a GA function tool {{'type': 'function', 'name': ..., "
            f"'description': ..., 'parameters': {{JSON Schema}}}}, got {tool!r}."
        )
    if not isinstance(tool["name"], str) or not _TOOL_NAME.match(tool["name"]):
        raise ConfigError(
            f"tools[{i}] name {tool['name']!r} is invalid: use 1-64 letters, digits, '_' or '-' "
            "(e.g. 'lookup_order')."
        )
    unknown = sorted(set(tool) - _FUNCTION_TOOL_KEYS)
    if unknown:
        raise ConfigError(
            f"tools[{i}] ({tool['name']}) has unknown field(s) {unknown}; a function tool has only "
            f"{sorted(_FUNCTION_TOOL_KEYS)}."
        )
    if tool.get("description") is not None and not isinstance(tool["description"], str):
        raise ConfigError(f"tools[{i}] ({tool['name']}) description must be a str.")
    if tool.get("parameters") is not None:
        if not isinstance(tool["parameters"], dict):
            raise ConfigError(
                f"tools[{i}] ({tool['name']}) parameters must be a JSON schema dict, e.g. "
                "{'type': 'object', 'properties': {}}."
            )
        if tool["parameters"]:  # {} is an empty schema the API accepts
            validate_parameters_schema(tool["parameters"], tool["name"])


@checked_class
@dataclass
class SessionConfig:
    """Everything voicelab sends in `session.update`. `to_session()` gives the GA `session` object."""

    model: str = "gpt-realtime"
    instructions: str | None = None
    voice: str | dict[str, str] = "alloy"
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    input_format: Any = "pcm16"
    output_format: Any = "pcm16"
    turn_detection: Any = field(
        default_factory=lambda: {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        }
    )
    transcription: dict[str, Any] | None = None
    noise_reduction: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    max_output_tokens: int | None = None
    speed: float | None = None

    def __post_init__(self) -> None:
        try:
            self.validate()
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a value of the wrong type
            raise ConfigError(
                f"SessionConfig has a value of the wrong type ({type(exc).__name__}: {exc}); check the field "
                "types in help(voicelab.SessionConfig)."
            ) from None

    # -- validation ----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first bad field and its valid values."""
        if not isinstance(self.model, str) or not _MODEL_NAME.match(self.model):
            raise ConfigError(
                f"model={self.model!r:.80} must be a model name (1-128 letters, digits and . _ - : / +, no "
                "spaces) such as 'gpt-realtime'."
            )
        if self.instructions is not None and not isinstance(self.instructions, str):
            raise ConfigError(
                f"instructions must be a string or None, got {type(self.instructions).__name__}."
            )
        if isinstance(self.voice, dict):
            if not str(self.voice.get("id", "")).startswith("voice_"):
                raise ConfigError(f"voice={self.voice!r}: a custom voice is {{'id': 'voice_...'}}.")
        elif self.voice not in VOICES:
            raise ConfigError(
                f"voice={self.voice!r} is not a Realtime voice; use one of {', '.join(VOICES)}."
            )
        if (
            not isinstance(self.output_modalities, (list, tuple))
            or list(self.output_modalities) not in MODALITIES
        ):
            raise ConfigError(
                f"output_modalities={self.output_modalities!r} is not valid; use ['audio'] (audio plus "
                "transcript) or ['text'] (both at once is not allowed)."
            )
        self.output_modalities = list(self.output_modalities)
        audio_format(self.input_format, "input_format")
        audio_format(self.output_format, "output_format")
        self.turn_detection = _turn_detection(self.turn_detection)
        _check_transcription(self.transcription)
        if self.noise_reduction not in (None, *NOISE_REDUCTION):
            raise ConfigError(
                f"noise_reduction={self.noise_reduction!r} is not valid; "
                "use None, 'near_field' or 'far_field'."
            )
        if not isinstance(self.tools, list):
            raise ConfigError("tools must be a list of GA function tool dicts.")
        for i, tool in enumerate(self.tools):
            _check_tool_dict(i, tool)
        names = [t["name"] for t in self.tools]
        if len(names) != len(set(names)):
            raise ConfigError(
                f"tools have duplicate names {sorted({n for n in names if names.count(n) > 1})}; each tool "
                "needs its own name: rename one (or drop the copy)."
            )
        if isinstance(self.tool_choice, str):
            if self.tool_choice not in TOOL_CHOICES:
                raise ConfigError(
                    f"tool_choice={self.tool_choice!r} is not valid; use 'auto', 'none', 'required' or "
                    "{'type': 'function', 'name': ...}."
                )
        elif not (isinstance(self.tool_choice, dict) and self.tool_choice.get("type") in ("function", "mcp")):
            raise ConfigError(
                f"tool_choice={self.tool_choice!r} must be a string mode or a GA tool choice object."
            )
        elif self.tool_choice["type"] == "function":
            chosen = self.tool_choice.get("name")
            if not isinstance(chosen, str) or chosen not in names:
                close = difflib.get_close_matches(str(chosen), names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"tool_choice names the function {chosen!r}, which is not in tools; {hint}use "
                    f"{{'type': 'function', 'name': <one of {names or 'the tools (none given)'}>}} or 'auto'."
                )
        elif not isinstance(self.tool_choice.get("server_label"), str):
            raise ConfigError("tool_choice {'type': 'mcp', ...} needs a 'server_label' (str); or use 'auto'.")
        m = self.max_output_tokens
        if m not in (None, "inf") and (isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 4096):
            raise ConfigError(
                f"max_output_tokens={m!r} must be None ('inf') or a whole number from 1 to 4096."
            )
        if self.speed is not None and (
            isinstance(self.speed, bool)
            or not isinstance(self.speed, (int, float))
            or not math.isfinite(self.speed)
            or not 0.25 <= self.speed <= 1.5
        ):
            raise ConfigError(f"speed={self.speed!r} must be a number from 0.25 to 1.5 (1.0 is normal).")

    # -- GA payload ----------------------------------------------------------------------------------
    @property
    def interrupt_response(self) -> bool:
        """Whether the server cancels the active response when the user starts speaking."""
        td = self.turn_detection
        return bool(td is not None and td.get("interrupt_response", True))

    def to_session(self) -> dict[str, Any]:
        """The GA `session` object (type "realtime"), validated with the openai types (and the fields
        checked again: they may have been assigned since the config was made)."""
        self.validate()
        audio_input: dict[str, Any] = {
            "format": audio_format(self.input_format, "input_format"),
            "turn_detection": copy.deepcopy(self.turn_detection),
            "transcription": copy.deepcopy(self.transcription),
            "noise_reduction": {"type": self.noise_reduction} if self.noise_reduction else None,
        }
        audio_output: dict[str, Any] = {
            "format": audio_format(self.output_format, "output_format"),
            "voice": copy.deepcopy(self.voice),
        }
        if self.speed is not None:
            audio_output["speed"] = self.speed
        session: dict[str, Any] = {
            "type": "realtime",
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_input, "output": audio_output},
            "tools": copy.deepcopy(self.tools),
            "tool_choice": copy.deepcopy(self.tool_choice),
            "max_output_tokens": "inf" if self.max_output_tokens in (None, "inf") else self.max_output_tokens,
        }
        if self.instructions is not None:
            session["instructions"] = self.instructions
        try:
            RealtimeSessionCreateRequest.model_validate(session)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"session.{loc}: {first['msg']}; fix that field of the SessionConfig.") from exc
        return session

    def session_update_event(self) -> dict[str, Any]:
        """The validated `session.update` client event."""
        return client_event("session.update", session=self.to_session())

    @checked
    def replace(self, **changes: Any) -> SessionConfig:
        """A copy with some fields changed (validated)."""
        check_field_names(changes, "SessionConfig.replace()")
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        values.update(changes)
        return SessionConfig(**values)

    # -- parsing -------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionConfig:
        """Build from a GA `session` dict (nested `audio`) or a flat dict of SessionConfig fields."""
        if not isinstance(data, dict):
            raise ConfigError(f"a session config must be a dict, got {type(data).__name__}.")
        d = copy.deepcopy(data)
        if d.get("type") not in (None, "realtime"):
            raise ConfigError(
                f"session type {d.get('type')!r} is not supported here; "
                "voicelab sessions are type 'realtime'."
            )
        d.pop("type", None)
        audio = d.pop("audio", None)
        audio = {} if audio is None else audio
        a_in, a_out = (
            (_or_empty(audio.get("input")), _or_empty(audio.get("output")))
            if isinstance(audio, dict)
            else ({}, {})
        )
        for where, part in (("audio", audio), ("audio.input", a_in), ("audio.output", a_out)):
            if not isinstance(part, dict):
                raise ConfigError(f"session {where} must be an object (a dict), got {type(part).__name__}.")
        for where, part, allowed in (
            ("audio", audio, {"input", "output"}),
            ("audio.input", a_in, {"format", "turn_detection", "transcription", "noise_reduction"}),
            ("audio.output", a_out, {"format", "voice", "speed"}),
        ):
            extra = sorted(set(part) - allowed)
            if extra:
                raise ConfigError(
                    f"session {where} has unknown field(s) {extra}; allowed: {sorted(allowed)}."
                )
        noise = a_in.get("noise_reduction")
        if noise is not None and not isinstance(noise, dict):
            raise ConfigError(
                f"session audio.input.noise_reduction={noise!r} must be an object such as "
                "{'type': 'near_field'}, or null."
            )
        mapped: dict[str, Any] = {}
        if "format" in a_in:
            mapped["input_format"] = a_in["format"]
        if "turn_detection" in a_in:
            mapped["turn_detection"] = a_in["turn_detection"]
        if "transcription" in a_in:
            mapped["transcription"] = a_in["transcription"]
        if a_in.get("noise_reduction"):
            mapped["noise_reduction"] = a_in["noise_reduction"].get("type")
        if "format" in a_out:
            mapped["output_format"] = a_out["format"]
        if "voice" in a_out:
            mapped["voice"] = a_out["voice"]
        if "speed" in a_out:
            mapped["speed"] = a_out["speed"]
        if d.get("max_output_tokens") == "inf":
            d["max_output_tokens"] = None
        if isinstance(d.get("noise_reduction"), dict):
            d["noise_reduction"] = d["noise_reduction"].get("type")
        known = {f.name for f in fields(cls)}
        # beta/flat aliases
        aliases = {"modalities": "output_modalities", "input_audio_format": "input_format"}
        aliases |= {"output_audio_format": "output_format", "input_audio_transcription": "transcription"}
        for old, new in aliases.items():
            if old in d:
                d[new] = d.pop(old)
        for key in ("id", "object", "expires_at", "include", "truncation", "tracing", "prompt", "reasoning"):
            d.pop(key, None)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown session field(s) {sorted(unknown)}; SessionConfig takes {sorted(known)} or a GA "
                "session object with nested 'audio'."
            )
        d.update(mapped)
        for key in ("input_format", "output_format"):
            if key in d:
                audio_format(d[key], key)
                d[key] = format_name(d[key])
        return cls(**d)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "tools")
        return f"SessionConfig({shown}, tools=[{len(self.tools)} tool(s)])"


def _or_empty(value: Any) -> Any:
    return {} if value is None else value


__all__ = ["MAX_MS", "MODALITIES", "VOICES", "SessionConfig", "audio_format", "format_name"]
