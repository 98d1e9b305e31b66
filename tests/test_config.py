"""SessionConfig -> GA session payload, validation, from_dict."""

from __future__ import annotations

import pytest
from openai.types.realtime import RealtimeSessionCreateRequest

from voicelab.audio.turns import TurnDetection
from voicelab.config import SessionConfig, format_name
from voicelab.errors import ConfigError
from voicelab.protocol import validate_client_event


def test_defaults_give_a_valid_ga_session() -> None:
    session = SessionConfig().to_session()
    RealtimeSessionCreateRequest.model_validate(session)
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"] is None
    assert session["audio"]["input"]["noise_reduction"] is None
    assert session["tool_choice"] == "auto"
    assert session["max_output_tokens"] == "inf"
    assert "instructions" not in session


def test_full_config_payload() -> None:
    tool = {"type": "function", "name": "get_weather", "description": "d", "parameters": {"type": "object"}}
    cfg = SessionConfig(
        instructions="Be brief.",
        voice="marin",
        output_modalities=["text"],
        input_format="g711_ulaw",
        output_format="g711_alaw",
        turn_detection={"type": "semantic_vad", "eagerness": "high", "interrupt_response": False},
        transcription={"model": "gpt-4o-mini-transcribe"},
        noise_reduction="far_field",
        tools=[tool],
        max_output_tokens=200,
    )
    session = cfg.to_session()
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert session["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert session["tools"] == [tool]
    assert session["max_output_tokens"] == 200
    assert cfg.interrupt_response is False
    event = cfg.session_update_event()
    validate_client_event(event)
    assert event["type"] == "session.update" and event["session"] == session


def test_turn_detection_none_and_dataclass() -> None:
    assert SessionConfig(turn_detection=None).to_session()["audio"]["input"]["turn_detection"] is None
    assert SessionConfig(turn_detection=None).interrupt_response is False
    td = SessionConfig(turn_detection=TurnDetection(0.7, 200, 800)).turn_detection
    assert td == {
        "type": "server_vad",
        "threshold": 0.7,
        "prefix_padding_ms": 200,
        "silence_duration_ms": 800,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"voice": "robot"}, "voice='robot' is not a Realtime voice; use one of alloy"),
        ({"output_modalities": ["audio", "text"]}, "both at once is not allowed"),
        (
            {"turn_detection": {"type": "server_vad", "threshold": 1.5}},
            "threshold=1.5 must be a number from 0.0",
        ),
        ({"turn_detection": {"type": "server_vad", "silence_duration_ms": -1}}, "silence_duration_ms=-1"),
        ({"turn_detection": {"type": "server_vad", "bogus": 1}}, "unknown field"),
        ({"turn_detection": {"type": "semantic_vad", "eagerness": "max"}}, "eagerness='max'"),
        ({"turn_detection": {"type": "magic"}}, "'server_vad' or 'semantic_vad'"),
        ({"input_format": "mp3"}, "input_format='mp3' is not an audio format; use 'pcm16'"),
        ({"output_format": {"type": "audio/pcm", "rate": 16000}}, "24000"),
        ({"noise_reduction": "medium"}, "near_field"),
        ({"transcription": {"language": "en"}}, "'model'"),
        ({"tools": [{"name": "x"}]}, r"tools\[0\]"),
        ({"tool_choice": "sometimes"}, "tool_choice='sometimes'"),
        ({"max_output_tokens": 0}, "1 to 4096"),
        ({"speed": 3.0}, "0.25 to 1.5"),
    ],
)
def test_validation_names_field_and_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SessionConfig(**kwargs)


def test_from_dict_round_trips_ga_session() -> None:
    cfg = SessionConfig(
        instructions="hi",
        voice="cedar",
        input_format="g711_alaw",
        noise_reduction="near_field",
        transcription={"model": "whisper-1"},
        max_output_tokens=100,
    )
    again = SessionConfig.from_dict(cfg.to_session())
    assert again == cfg
    assert again.to_session() == cfg.to_session()


def test_from_dict_accepts_flat_and_rejects_unknown() -> None:
    cfg = SessionConfig.from_dict({"voice": "ash", "modalities": ["text"], "input_audio_format": "g711_ulaw"})
    assert (cfg.voice, cfg.output_modalities, format_name(cfg.input_format)) == ("ash", ["text"], "g711_ulaw")
    with pytest.raises(ConfigError, match="unknown session field"):
        SessionConfig.from_dict({"temperature": 0.8})
    with pytest.raises(ConfigError, match="type 'realtime'"):
        SessionConfig.from_dict({"type": "transcription"})


def test_replace_validates() -> None:
    cfg = SessionConfig()
    assert cfg.replace(voice="echo").voice == "echo"
    with pytest.raises(ConfigError):
        cfg.replace(voice="nope")


# -- bad input of every kind fails when the SessionConfig is made (issue 8, the held-out probe) -------------
def _clear(exc: BaseException, *words: str) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) < 500, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


_TD = {"type": "server_vad"}
_FN = {"type": "function", "name": "lookup"}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"model": "gpt realtime"}, ("model", "no spaces")),
        ({"model": "\u200b"}, ("model",)),
        ({"model": "x" * 200}, ("model", "1-128")),
        ({"turn_detection": {**_TD, "silence_duration_ms": 10**12}}, ("silence_duration_ms", "600000")),
        ({"turn_detection": {**_TD, "prefix_padding_ms": 10**9}}, ("prefix_padding_ms", "at most")),
        ({"turn_detection": {**_TD, "idle_timeout_ms": 10**9}}, ("idle_timeout_ms",)),
        ({"transcription": {"model": 5}}, ("transcription.model", "str")),
        ({"transcription": {"model": "whisper-1", "language": 5}}, ("transcription.language",)),
        ({"transcription": {"model": "whisper-1", "prompt": 5}}, ("transcription.prompt",)),
        ({"transcription": {"model": "whisper-1", "langauge": "en"}}, ("langauge", "allowed")),
        ({"tools": [{**_FN, "parameters": {"type": "array"}}]}, ("lookup", '"object"')),
        ({"tools": [{**_FN, "parameters": {"type": "object", "properties": 5}}]}, ("properties",)),
        ({"tools": [{**_FN, "description": 5}]}, ("description", "str")),
        ({"tools": [{**_FN, "paramaters": {}}]}, ("paramaters", "unknown field")),
        ({"tool_choice": {"type": "function"}}, ("tool_choice", "not in tools")),
        ({"tool_choice": {"type": "function", "name": "lokup"}, "tools": [_FN]}, ("did you mean 'lookup'",)),
        ({"tool_choice": {"type": "mcp"}}, ("server_label",)),
        ({"speed": True}, ("speed",)),
    ],
)
def test_bad_session_values_fail_when_made(fields: dict, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        SessionConfig(**fields)
    _clear(info.value, *words)


def test_good_values_still_pass() -> None:
    config = SessionConfig(
        model="ft:gpt-realtime:org::abc",
        transcription={"model": "gpt-4o-mini-transcribe", "language": "en", "prompt": ""},
        tools=[{**_FN, "description": "Look up", "parameters": {}}],
        tool_choice={"type": "function", "name": "lookup"},
        turn_detection={**_TD, "silence_duration_ms": 600_000},
    )
    assert config.to_session()["tool_choice"] == {"type": "function", "name": "lookup"}


def test_from_dict_bad_audio_objects() -> None:
    with pytest.raises(ConfigError, match="noise_reduction='near_field' must be an object"):
        SessionConfig.from_dict({"audio": {"input": {"noise_reduction": "near_field"}}})
    with pytest.raises(ConfigError, match=r"audio.input has unknown field\(s\) \['formt'\]"):
        SessionConfig.from_dict({"audio": {"input": {"formt": "pcm16"}}})
    with pytest.raises(ConfigError, match="audio must be an object"):
        SessionConfig.from_dict({"audio": []})


def test_a_field_assigned_later_is_checked_by_to_session() -> None:
    config = SessionConfig()
    config.voice = "robot"
    with pytest.raises(ConfigError, match="not a Realtime voice"):
        config.to_session()
