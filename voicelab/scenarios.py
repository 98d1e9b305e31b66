"""Scenarios: a named caller (user turns as audio clips or text for the offline TTS), the tool outputs to
stub, and what should happen (expectations), saved and loaded as a folder.

    from voicelab.scenarios import Scenario, expect

    scenario = Scenario(
        "order-return",
        turns=["Hi, I would like to return an order.", "The order number is four five six seven."],
        stubs={"lookup_order": "Delivered on March third."},
        expect=[expect.tool("lookup_order", {"order_number": "four five six seven"}),
                expect.says("return label"), expect.never_says("sorry"), expect.first_audio_within(1500)],
    )
    scenario.save("scenarios/order-return")
    Scenario.load("scenarios/order-return")
    Scenario.from_recording("recordings/20260101-120000-000000")   # its caller audio and tool outputs

Folder format (version 1): `turn-001.wav`, ... (mono PCM16 24 kHz, for audio turns) and `scenario.json` =
`{"format": "voicelab-scenario", "version": 1, "name", "description", "voice",
"turns": [{"file", "transcript"} | {"text"}], "stubs": <Stubs.to_json()> | null, "expect": [<expectation>]}`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicelab.agents.stubs import Stubs
from voicelab.audio.core import Audio
from voicelab.checks import checked, one_of, output_folder, path_arg, text, unknown_name
from voicelab.errors import AudioError, ConfigError

FORMAT = "voicelab-scenario"
VERSION = 1
MANIFEST = "scenario.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

__all__ = ["Expectation", "Outcome", "RunFacts", "Scenario", "ScenarioTurn", "expect"]


# -- what a run did, as the expectations read it ----------------------------------------------------------
@dataclass
class RunFacts:
    """What one run did, read from its recording (see `RunFacts.from_recording`)."""

    assistant_text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)
    guardrail_trips: list[str] = field(default_factory=list)
    first_audio_ms: list[float] = field(default_factory=list)  # per user turn: end of speech -> first audio

    @classmethod
    @checked
    def from_recording(cls, rec: Any) -> RunFacts:
        from voicelab import tables

        history = tables.history(rec)
        said = history[history["role_or_type"] == "assistant"]["text"].dropna()
        calls = tables.tool_calls(rec)
        trips = tables.guardrail_trips(rec)
        handoffs = [
            str((e.get("event") or {}).get("to_agent"))
            for e in getattr(rec, "events", [])
            if e.get("dir") == "app" and e.get("type") == "handoff"
        ]
        return cls(
            assistant_text="\n".join(str(t) for t in said),
            tool_calls=[
                (str(n), a if isinstance(a, dict) else {})
                for n, a in zip(calls["name"], calls["arguments"], strict=True)
            ],
            handoffs=handoffs,
            guardrail_trips=[str(g) for g in trips["guardrail"]],
            first_audio_ms=speech_end_to_first_audio(rec),
        )


def speech_end_to_first_audio(rec: Any) -> list[float]:
    """Per answered user turn, the silence the caller hears from the end of their speech to the first audio:
    the server VAD's silence_duration_ms (the speech that ended the turn) + the server's end of turn to the
    first audio delta. Measured this way it is the same figure whether the caller's audio was sent in real
    time or faster (an offline experiment), where the audio track and the event clock do not line up."""
    from voicelab import tables

    turns = tables.turns(rec)
    silence = _silence_ms(rec)
    out = []
    for kind, value in zip(turns["kind"], turns["eos_to_first_audio_ms"], strict=True):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        out.append(float(value) + (silence if kind == "vad" else 0.0))
    return out


def _silence_ms(rec: Any) -> float:
    silence = 0.0
    for line in getattr(rec, "events", []):
        if line.get("dir") == "server" and line.get("type") in ("session.created", "session.updated"):
            detection = (((line.get("event") or {}).get("session") or {}).get("audio") or {}).get(
                "input"
            ) or {}
            detection = detection.get("turn_detection")
            if isinstance(detection, dict) and detection.get("type") == "server_vad":
                silence = float(detection.get("silence_duration_ms") or 0.0)
    return silence


# -- expectations -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


@dataclass(frozen=True)
class Expectation:
    """One thing a run should do. Make them with `expect.*`; `label` names its column in experiment runs."""

    kind: str
    name: str = ""  # tool name, phrase, agent name
    arguments: Mapping[str, Any] | None = None
    match: str = "exact"
    ms: float | None = None

    @property
    def label(self) -> str:
        if self.kind == "tool":
            args = "" if self.arguments is None else json.dumps(dict(self.arguments), sort_keys=True)
            return f"tool:{self.name}{args}"
        if self.kind in ("says", "never_says", "handoff"):
            return f"{self.kind}:{self.name}"
        if self.kind == "first_audio_within":
            return f"first_audio_within:{self.ms:g}ms"
        return self.kind

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.name:
            data["name"] = self.name
        if self.arguments is not None:
            data["arguments"] = dict(self.arguments)
            data["match"] = self.match
        if self.ms is not None:
            data["ms"] = self.ms
        return data

    @classmethod
    def from_json(cls, data: Any) -> Expectation:
        if not isinstance(data, Mapping) or data.get("kind") not in _KINDS:
            raise ConfigError(
                f"an expectation must be an object with kind one of {', '.join(_KINDS)}, got {data!r}"
            )
        kind = data["kind"]
        if kind == "tool":
            return expect.tool(data.get("name", ""), data.get("arguments"), match=data.get("match", "exact"))
        if kind in ("says", "never_says", "handoff"):
            return getattr(expect, kind)(data.get("name", ""))
        if kind == "first_audio_within":
            return expect.first_audio_within(data.get("ms"))  # type: ignore[arg-type]
        return expect.no_guardrail_trip()

    def check(self, facts: RunFacts) -> Outcome:
        if self.kind == "tool":
            calls = [args for name, args in facts.tool_calls if name == self.name]
            if not calls:
                return Outcome(False, f"{self.name} was not called")
            if self.arguments is None or any(self.arguments_match(a) for a in calls):
                return Outcome(True, f"{self.name} called")
            return Outcome(False, f"{self.name} called with {calls[0]}")
        if self.kind == "says":
            found = self.name.lower() in _words(facts.assistant_text)
            return Outcome(found, "said" if found else f"never said {self.name!r}")
        if self.kind == "never_says":
            found = self.name.lower() in _words(facts.assistant_text)
            return Outcome(not found, f"said {self.name!r}" if found else "not said")
        if self.kind == "handoff":
            done = self.name in facts.handoffs
            return Outcome(done, "handed off" if done else f"handoffs: {facts.handoffs or 'none'}")
        if self.kind == "no_guardrail_trip":
            return Outcome(not facts.guardrail_trips, f"trips: {facts.guardrail_trips or 'none'}")
        worst = max(facts.first_audio_ms) if facts.first_audio_ms else math.inf
        assert self.ms is not None
        return Outcome(worst <= self.ms, f"slowest turn {worst:.0f} ms")

    def arguments_match(self, actual: Mapping[str, Any]) -> bool:
        if self.arguments is None:
            return True
        if self.match == "exact":
            return dict(actual) == dict(self.arguments)
        for key, pattern in self.arguments.items():
            if key not in actual or re.fullmatch(str(pattern), str(actual[key]), re.IGNORECASE) is None:
                return False
        return True


_KINDS = ("tool", "says", "never_says", "handoff", "no_guardrail_trip", "first_audio_within")


def _words(text: str) -> str:
    return " ".join(text.lower().split())


class _Namespace(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise unknown_name(cls.__name__, name, vars(cls))


class expect(metaclass=_Namespace):  # a namespace, read as `expect.tool(...)`
    """Expectation makers."""

    @staticmethod
    @checked
    def tool(name: str, arguments: Mapping[str, Any] | None = None, *, match: str = "exact") -> Expectation:
        """The agent calls tool `name` (with these arguments: `match="exact"` equal JSON, `"pattern"` each
        given argument's value fully matches a regex, case-insensitive)."""
        if not isinstance(name, str) or not name:
            raise ConfigError("expect.tool needs the tool's name, e.g. expect.tool('lookup_order')")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise ConfigError(
                f"expect.tool({name!r}): arguments must be a dict, got {type(arguments).__name__}"
            )
        if match not in ("exact", "pattern"):
            raise ConfigError(f"expect.tool({name!r}): match must be 'exact' or 'pattern', got {match!r}")
        if arguments is not None:
            try:
                json.dumps(dict(arguments), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"expect.tool({name!r}): arguments must be JSON values as the model sends them ({exc}); "
                    "use str, numbers, bools, None, lists and dicts"
                ) from None
        if match == "pattern" and arguments:
            for key, pattern in arguments.items():
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise ConfigError(
                        f"expect.tool({name!r}): argument {key!r} is not a regex ({exc})"
                    ) from None
        return Expectation("tool", name, None if arguments is None else dict(arguments), match)

    @staticmethod
    @checked
    def says(phrase: str) -> Expectation:
        """The agent says `phrase` (case and spacing ignored) in some answer."""
        return Expectation("says", _phrase(phrase, "says"))

    @staticmethod
    @checked
    def never_says(phrase: str) -> Expectation:
        """The agent never says `phrase` (case and spacing ignored)."""
        return Expectation("never_says", _phrase(phrase, "never_says"))

    @staticmethod
    @checked
    def handoff(agent: str) -> Expectation:
        """The call is handed off to the agent named `agent`."""
        return Expectation("handoff", _phrase(agent, "handoff"))

    @staticmethod
    @checked
    def no_guardrail_trip() -> Expectation:
        """No output guardrail trips."""
        return Expectation("no_guardrail_trip")

    @staticmethod
    @checked
    def first_audio_within(ms: float) -> Expectation:
        """Every answered turn's end of speech -> first audio is at most `ms`."""
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms <= 0:
            raise ConfigError(f"expect.first_audio_within needs a positive number of ms, got {ms!r}")
        return Expectation("first_audio_within", ms=float(ms))


def _phrase(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expect.{where} needs non-empty text, got {value!r}")
    return " ".join(value.split())


# -- turns and scenarios ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioTurn:
    """A caller turn: audio (from a clip or file), or text spoken by the offline TTS at run time."""

    audio: Audio | None = None
    text: str | None = None
    source: str | None = None  # the file it came from

    def speak(self, voice: str) -> Audio:
        if self.audio is not None:
            return self.audio
        from voicelab.speech import synthesize

        assert self.text is not None
        return synthesize(self.text, voice=voice)


class Scenario:
    """A named caller: `turns` (Audio, text for the offline TTS, a Path to an audio file, or a
    `voicelab.clips.TurnClip`), `stubs` (a voicelab.Stubs, or {tool name: fixed output}) that answer the
    agent's tools during the run, and `expect` (a list of `expect.*`)."""

    @checked
    def __init__(
        self,
        name: str,
        turns: Sequence[Any],
        *,
        stubs: Stubs | Mapping[str, Any] | None = None,
        expect: Sequence[Expectation] = (),
        voice: str = "echo",
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"scenario name {name!r} must be 1-80 letters, digits, '-', '_' or '.' (it names folders)"
            )
        self.name = name
        self.description = text(description, "description", empty=True, where=f"scenario {name!r}")
        from voicelab.config import VOICES

        self.voice = one_of(voice, "voice", VOICES, where=f"scenario {name!r}")
        if isinstance(turns, str | Audio | Path) or not isinstance(turns, Sequence) or not turns:
            raise ConfigError(
                f"scenario {name!r} needs a non-empty list of turns (Audio, text, a Path or a TurnClip)"
            )
        self.turns = [_turn(name, index, t) for index, t in enumerate(turns, 1)]
        self.stubs = _stubs(name, stubs)
        if (
            isinstance(expect, Expectation)
            or not isinstance(expect, (list, tuple))
            or not all(isinstance(e, Expectation) for e in expect)
        ):
            raise ConfigError(
                f"scenario {name!r}: expect must be a list of expectations made with "
                "voicelab.scenarios.expect, e.g. expect=[expect.says('order')]"
            )
        self.expect = list(expect)
        labels = [e.label for e in self.expect]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"scenario {name!r} lists the same expectation twice; remove the copy")

    def __repr__(self) -> str:
        return (
            f"Scenario(name={self.name!r}, turns={len(self.turns)}, stubs={self.stubs!r}, "
            f"expect={[e.label for e in self.expect]})"
        )

    # -- running ------------------------------------------------------------------------------------------
    def audio_turns(self) -> list[Audio]:
        """The caller's turns as 24 kHz audio (text spoken by the offline TTS)."""
        return [t.speak(self.voice).to_realtime() for t in self.turns]

    def fresh_stubs(self) -> Stubs | None:
        """A new Stubs with this scenario's stubs (call counters at zero), or None."""
        return None if self.stubs is None else Stubs.from_json(self.stubs.to_json())

    @checked
    def check_agent(self, agent: Any) -> None:
        """Raise ConfigError when an expectation names a tool or agent `agent` does not have."""
        from voicelab.agents import Agent

        if not isinstance(agent, Agent):
            raise ConfigError(
                f"scenario {self.name!r}: check_agent() takes a voicelab.Agent, got {type(agent).__name__}"
            )
        tools = {t.name for t in getattr(agent, "tools", [])} | set(getattr(agent, "handoff_tools", {}) or {})
        agents = _reachable_agents(agent)
        for e in self.expect:
            if e.kind == "tool" and e.name not in tools:
                raise ConfigError(
                    f"scenario {self.name!r} expects a call of {e.name!r} but agent {agent.name!r} has no "
                    f"such tool (tools: {', '.join(sorted(tools)) or 'none'}); fix the expectation or agent"
                )
            if e.kind == "handoff" and e.name not in agents:
                raise ConfigError(
                    f"scenario {self.name!r} expects a handoff to {e.name!r} but agent {agent.name!r} cannot "
                    f"hand off to it (agents: {', '.join(sorted(agents)) or 'none'})"
                )

    def check(self, facts: RunFacts) -> dict[str, Outcome]:
        return {e.label: e.check(facts) for e in self.expect}

    # -- files --------------------------------------------------------------------------------------------
    @checked
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the scenario to `folder` (new or empty): clips and scenario.json."""
        from voicelab.audio.io import write_audio

        out = output_folder(folder, "folder", example="'scenarios/order-return'", where="Scenario.save")
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out} is a file; pass a new folder to save the scenario into")
        if out.is_dir() and any(out.iterdir()):
            raise ConfigError(
                f"{out} is not empty; pass a new folder (or empty this one) to save the scenario"
            )
        out.mkdir(parents=True, exist_ok=True)
        turns: list[dict[str, Any]] = []
        for number, turn in enumerate(self.turns, 1):
            if turn.audio is not None:
                name = f"turn-{number:03d}.wav"
                write_audio(out / name, turn.audio.to_realtime())
                turns.append({"file": name, "transcript": turn.text})
            else:
                turns.append({"text": turn.text})
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "voice": self.voice,
            "turns": turns,
            "stubs": None if self.stubs is None else self.stubs.to_json(),
            "expect": [e.to_json() for e in self.expect],
        }
        (out / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return out

    @classmethod
    @checked
    def load(cls, folder: str | os.PathLike[str]) -> Scenario:
        """Read a scenario folder written by `save()`."""
        from voicelab.audio.io import read_audio

        path = path_arg(folder, "folder", example="'scenarios/order-return'", where="Scenario.load")
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise ConfigError(
                f"scenario folder {path} does not exist; pass a folder written by Scenario.save"
            )
        if not manifest_path.is_file():
            raise ConfigError(f"{path} has no {MANIFEST}; pass a folder written by Scenario.save")
        try:
            data = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{manifest_path} is not valid JSON ({exc}); restore it or save the scenario again"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ConfigError(f"{manifest_path} is not a version {VERSION} voicelab scenario; save it again")
        turns: list[Any] = []
        for entry in data.get("turns") or []:
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                file = path / entry["file"]
                if not file.is_file():
                    raise ConfigError(
                        f"scenario clip {file} is missing; restore it or remove its turn from {manifest_path}"
                    )
                try:
                    audio = read_audio(file)
                except AudioError as exc:
                    raise ConfigError(
                        f"scenario clip {file} cannot be read ({exc}); replace it with a WAV file or remove "
                        f"its turn from {manifest_path}"
                    ) from exc
                text = entry.get("transcript")
                turns.append(
                    ScenarioTurn(audio.to_realtime(), text if isinstance(text, str) else None, str(file))
                )
            elif isinstance(entry, dict) and isinstance(entry.get("text"), str):
                turns.append(entry["text"])
            else:
                raise ConfigError(
                    f"{manifest_path}: a turn must be {{'file': ...}} or {{'text': ...}}, got {entry!r}"
                )
        stubs = Stubs.from_json(data["stubs"]) if data.get("stubs") else None
        return cls(
            data.get("name", path.name),
            turns,
            stubs=stubs,
            expect=[Expectation.from_json(e) for e in data.get("expect") or []],
            voice=data.get("voice", "echo"),
            description=data.get("description", ""),
        )

    @classmethod
    @checked
    def from_recording(
        cls, path: Any, name: str | None = None, *, expect: Sequence[Expectation] = ()
    ) -> Scenario:
        """A scenario of a recorded session: its caller's turns (cut from the input track as
        `voicelab.clips` does) and its tools' recorded outputs as stubs."""
        from voicelab.clips import recorded_turns
        from voicelab.recording import Recording, load_recording

        if name is not None and not isinstance(name, str):
            raise ConfigError(
                f"Scenario.from_recording: name must be a str or None, got {type(name).__name__}"
            )
        rec = path if isinstance(path, Recording) else load_recording(path)
        found = recorded_turns(rec)
        if not found:
            raise ConfigError(
                f"the recording {rec.path} has no caller turns; record a session in which the caller speaks"
            )
        has_outputs = any(
            e.get("dir") == "app"
            and e.get("type") == "tool_call"
            and (e.get("event") or {}).get("output") is not None
            for e in rec.events
        )
        stubs = Stubs().recorded(rec) if has_outputs else None
        turns = [ScenarioTurn(t.audio, t.transcript, None) for t in found]
        label = name or re.sub(r"[^A-Za-z0-9_.-]", "-", rec.path.name).strip("-.") or "recording"
        return cls(label, turns, stubs=stubs, expect=expect, description=f"from recording {rec.path}")

    @classmethod
    @checked
    def from_turns(cls, folder: str | os.PathLike[str], name: str | None = None, **kwargs: Any) -> Scenario:
        """A scenario of a `voicelab.clips.save_turns` folder (e.g. from the cockpit's `lab.save_turns`)."""
        from voicelab.clips import load_turns

        if name is not None and not isinstance(name, str):
            raise ConfigError(f"Scenario.from_turns: name must be a str or None, got {type(name).__name__}")
        clips = load_turns(folder)
        label = name or re.sub(r"[^A-Za-z0-9_.-]", "-", Path(folder).name).strip("-.") or "turns"
        return cls(label, clips, **kwargs)


MAX_TEXT_TURN = 4096  # characters: the speech API's limit for one input


def _turn(name: str, index: int, value: Any) -> ScenarioTurn:
    from voicelab.clips import TurnClip

    if isinstance(value, ScenarioTurn):
        return value
    if isinstance(value, Audio):
        if value.samples.size == 0:
            raise ConfigError(f"scenario {name!r}: turn {index} is empty audio; give it some speech")
        return ScenarioTurn(value.to_realtime())
    if isinstance(value, TurnClip):
        return ScenarioTurn(value.audio, value.transcript, str(value.file))
    if isinstance(value, Path):
        from voicelab.audio.io import read_audio

        try:
            return ScenarioTurn(read_audio(value).to_realtime(), None, str(value))
        except AudioError as exc:
            raise ConfigError(f"scenario {name!r}: turn {index}: {exc}") from exc
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"scenario {name!r}: turn {index} is empty text; write what the caller says")
        if len(value) > MAX_TEXT_TURN:
            raise ConfigError(
                f"scenario {name!r}: turn {index} is {len(value)} characters of text; a caller's turn is at "
                f"most {MAX_TEXT_TURN} (split it into several turns)"
            )
        return ScenarioTurn(text=value.strip())
    raise ConfigError(
        f"scenario {name!r}: turn {index} is a {type(value).__name__}; use Audio, text, a pathlib.Path "
        "or a TurnClip"
    )


def _stubs(name: str, stubs: Any) -> Stubs | None:
    if stubs is None:
        return None
    if isinstance(stubs, Mapping):
        made = Stubs()
        for tool_name, output in stubs.items():
            made.fixed(tool_name, output)
        return made
    if not isinstance(stubs, Stubs):
        raise ConfigError(
            f"scenario {name!r}: stubs must be a voicelab.Stubs or a dict of tool name -> output, "
            f"got {type(stubs).__name__}"
        )
    try:
        stubs.to_json()
    except ConfigError as exc:
        raise ConfigError(f"scenario {name!r}: {exc} (a scenario's stubs are saved with it)") from None
    return stubs


def _reachable_agents(agent: Any) -> set[str]:
    names: set[str] = set()
    todo = [agent]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for entry in (getattr(current, "handoff_tools", {}) or {}).values():
            for target in getattr(entry, "targets", []) or []:
                names.add(target.name)
                todo.append(target)
    return names
