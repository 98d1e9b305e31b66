"""Replay a recorded call's caller turns against another agent or other settings, and compare.

    result = await voicelab.replay.replay("recordings/20260101-120000-000000", agent=other_agent)
    result.compare     # tables.compare of the original and the replay (one row each)
    result.turns       # per caller turn: what the caller said, what each side answered and called

Against the embedded server (the default, at pace="fast", with the caller's audio sent as fast as it is
taken) a replay is deterministic: the same recording, agent and script give the same tables. Without
`agent=`, the recording's own agent is rebuilt from its meta.json (instructions, session settings, tools
answered by their recorded outputs).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from voicelab.agents.agent import Agent
from voicelab.agents.stubs import Stubs
from voicelab.agents.tools import FunctionTool
from voicelab.checks import checked, output_folder
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError

__all__ = ["ReplayResult", "agent_from_recording", "changed_agent", "load_agent", "replay", "turn_answers"]


@dataclass
class ReplayResult:
    original: Path
    replay: Path
    compare: pd.DataFrame
    turns: pd.DataFrame
    experiment: Any

    def __repr__(self) -> str:
        return (
            f"ReplayResult(original={str(self.original)!r}, replay={str(self.replay)!r}, "
            f"turns={len(self.turns)})"
        )


@checked
def agent_from_recording(path: Any) -> Agent:
    """The agent of a recording, from its meta.json: instructions, session settings and tools (declared,
    answered by the recorded outputs, or by a note that none was recorded)."""
    from voicelab.recording import load_recording

    rec = path if hasattr(path, "meta") else load_recording(path)
    config_data = rec.meta.get("config")
    if not isinstance(config_data, dict):
        raise ConfigError(
            f"{rec.path} has no session config in meta.json; pass the agent to replay (--agent module:name)"
        )
    config = SessionConfig.from_dict(config_data)
    tools = [
        FunctionTool.declared(t["name"], t.get("parameters"), t.get("description", ""))
        for t in config.tools
        if isinstance(t, dict) and t.get("type", "function") == "function" and t.get("name")
    ]
    recorded = {
        (e.get("event") or {}).get("name")
        for e in rec.events
        if e.get("dir") == "app" and e.get("type") == "tool_call" and (e.get("event") or {}).get("output")
    }
    stubs = Stubs().recorded(rec) if recorded else Stubs()
    for declared in tools:
        if declared.name not in stubs:
            stubs.fixed(declared.name, f"No output was recorded for {declared.name}.")
    return Agent(
        name=str(rec.meta.get("agent") or "recorded"),
        instructions=config.instructions or "",
        tools=tools,
        stubs=stubs,
        model=config.model,
        voice=config.voice,
        output_modalities=config.output_modalities,
        turn_detection=config.turn_detection,
        transcription=config.transcription,
        noise_reduction=config.noise_reduction,
        tool_choice=config.tool_choice,
    )


@checked
def load_agent(spec: str) -> Agent:
    """An Agent from `module:name` or `path/to/file.py:name` (an Agent, or a function returning one)."""
    if not isinstance(spec, str):
        raise ConfigError(f"agent must be 'module:name' or 'file.py:name' (a str), got {type(spec).__name__}")
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"agent {spec!r} must be module:name or file.py:name, e.g. my_agents:support")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            file = Path(module_name)
            if not file.is_file():
                raise ConfigError(f"agent file {file} does not exist; check the path in {spec!r}")
            loader_spec = importlib.util.spec_from_file_location(file.stem, file)
            assert loader_spec is not None and loader_spec.loader is not None
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name!r} for agent {spec!r} ({exc}); check the module name"
        ) from None
    except SyntaxError as exc:
        raise ConfigError(
            f"{exc.filename or module_name}, line {exc.lineno}: {exc.msg}; fix the syntax of the agent's "
            "module"
        ) from None
    except ConfigError:
        raise
    except Exception as exc:  # the user's module raised while it was imported
        raise ConfigError(
            f"importing {module_name!r} for agent {spec!r} raised {type(exc).__name__}: {exc}; fix the "
            "module (it must import without errors)"
        ) from None
    value = getattr(module, attr, None)
    if value is None:
        raise ConfigError(
            f"{module_name!r} has no {attr!r}; name an Agent (or a function returning one) in it"
        )
    if not isinstance(value, Agent) and callable(value):
        try:
            value = value()
        except ConfigError:
            raise
        except Exception as exc:  # the user's factory raised
            raise ConfigError(
                f"{spec!r} raised {type(exc).__name__}: {exc} when called; fix the function (it must return "
                "a voicelab.Agent with no arguments)"
            ) from None
    if not isinstance(value, Agent):
        raise ConfigError(f"{spec!r} is a {type(value).__name__}, not a voicelab.Agent")
    return value


@checked
def changed_agent(agent: Agent, instructions: str | None, settings: list[str]) -> Agent:
    """`agent` with new instructions and `FIELD=JSON` session settings (Agent fields such as voice,
    turn_detection, transcription)."""
    import json

    from voicelab.agents.agent import SESSION_SETTINGS

    if not isinstance(agent, Agent):
        raise ConfigError(f"changed_agent() takes a voicelab.Agent, got {type(agent).__name__}")
    if instructions is not None and not isinstance(instructions, str):
        raise ConfigError(f"instructions must be a str or None, got {type(instructions).__name__}")
    if isinstance(settings, str) or not isinstance(settings, (list, tuple)):
        raise ConfigError(
            "settings must be a list of 'FIELD=JSON' strings, e.g. ['voice=\"echo\"'], got "
            f"{type(settings).__name__}"
        )
    changes: dict[str, Any] = {}
    for item in settings:
        if not isinstance(item, str):
            raise ConfigError(f"setting {item!r} must be a 'FIELD=JSON' str, e.g. 'voice=\"echo\"'")
        field, sep, value = item.partition("=")
        field = field.strip()
        if not sep or field not in SESSION_SETTINGS:
            raise ConfigError(
                f"setting {item!r} must be FIELD=JSON with FIELD one of {', '.join(SESSION_SETTINGS)}"
            )
        try:
            changes[field] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"setting {field}: {value!r} is not JSON ({exc.msg}); quote strings, e.g. {field}='\"echo\"'"
            ) from None
    if instructions is not None:
        changes["instructions"] = instructions
    return agent.clone(**changes)


@checked
def turn_answers(rec: Any) -> pd.DataFrame:
    """Per caller turn, in conversation order: the caller's words and what the assistant said and called."""
    from voicelab import tables

    history = tables.history(rec)
    rows: list[dict[str, Any]] = []
    for kind, text in zip(history["role_or_type"], history["text"], strict=True):
        text = "" if pd.isna(text) else str(text)
        if kind == "user":
            rows.append({"caller": text, "said": [], "tools": []})
        elif rows and kind == "assistant" and text:
            rows[-1]["said"].append(text)
        elif rows and kind == "function_call":
            rows[-1]["tools"].append(text)
    return pd.DataFrame(
        {
            "caller": [r["caller"] for r in rows],
            "said": [" ".join(r["said"]) for r in rows],
            "tools": ["; ".join(r["tools"]) for r in rows],
        }
    )


@checked
async def replay(
    recording: str | os.PathLike[str],
    agent: Agent | None = None,
    *,
    script: Any = "returns_desk",
    url: str | None = None,
    api_key: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    realtime: bool = False,
) -> ReplayResult:
    """Re-run the recording's caller turns against `agent` (default: the recording's own agent) on the
    embedded server with `script` (or at `url`), and compare the two calls."""
    from voicelab import tables
    from voicelab.experiments import experiment
    from voicelab.recording import load_recording, recording_folder
    from voicelab.scenarios import Scenario

    if agent is not None and not isinstance(agent, Agent):
        raise ConfigError(f"replay: agent must be a voicelab.Agent or None, got {type(agent).__name__}")
    original = recording_folder(recording)
    rec = load_recording(original)
    scenario = Scenario.from_recording(rec, name="replay")
    chosen = agent if agent is not None else agent_from_recording(rec)
    out = (
        output_folder(out_dir, "out_dir", example="'replays/call-1'", where="replay")
        if out_dir is not None
        else Path("replays") / original.name
    )
    result = await experiment(
        {"replay": chosen},
        [scenario],
        out_dir=out,
        url=url,
        api_key=api_key,
        script=script,
        realtime=realtime,
        resume=False,
        progress=False,
        concurrency=1,
    )
    new = Path(str(result.runs["recording"].iloc[0]))
    error = result.runs["error"].iloc[0]
    if isinstance(error, str):
        raise ConfigError(f"the replay failed: {error}")
    compare = tables.compare({"original": original, "replay": new})
    before, after = turn_answers(rec), turn_answers(new)
    count = max(len(before), len(after))
    before, after = before.reindex(range(count)), after.reindex(range(count))
    turns = pd.DataFrame(
        {
            "turn": range(count),
            "caller": before["caller"].fillna(after["caller"]).astype("string"),
            "original": before["said"].astype("string"),
            "replay": after["said"].astype("string"),
            "original_tools": before["tools"].astype("string"),
            "replay_tools": after["tools"].astype("string"),
        }
    )
    turns["same"] = (turns["original"].fillna("") == turns["replay"].fillna("")) & (
        turns["original_tools"].fillna("") == turns["replay_tools"].fillna("")
    )
    return ReplayResult(original=original, replay=new, compare=compare, turns=turns, experiment=result)
