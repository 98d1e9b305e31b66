"""Experiments: every variant of an agent against every scenario, `repeats` times, compared in one table.

    result = await voicelab.experiment({"A": prompt_a, "B": prompt_b}, [scenario], repeats=2, base=agent)
    result.runs       # one row per run: expectations, tool/argument correctness, trips, latency, tokens, cost
    result.summary    # one row per variant: pass rate, p50/p95 latency, trips, cost
    result.figure()   # the variants side by side

A variant is an `Agent`, a `Prompt` (or instructions text) on the `base` agent, a dict of session settings
for the base agent (Agent fields such as `turn_detection`, `voice`; `instructions`; and `connect_kwargs` /
`architecture`, passed to `voicelab.connect`), or a `Variant`.

By default the runs go to a fresh embedded server at pace="fast" with the bundled `returns_desk` script (give
`script=` for another), the caller sending its audio faster than real time; `url=` sends them to another
server or, with `url="openai"`, to the real API (key from OPENAI_API_KEY), where `realtime=True` is the
sensible caller. Every run is recorded under `out_dir/runs/<variant>__<scenario>__<repeat>/` and its result
written to `result.json` there the moment it ends: running the same experiment again (after an interrupted
kernel, say) reuses every finished run whose variant and scenario are unchanged and runs only the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from voicelab.agents.agent import SESSION_SETTINGS, Agent
from voicelab.agents.stubs import Stubs
from voicelab.checks import checked, checked_class, flag, number, one_of, output_folder
from voicelab.errors import ConfigError, VoicelabError
from voicelab.prompts import Prompt, prompt_hash
from voicelab.redact import redact_headers, redact_text, redact_url
from voicelab.scenarios import RunFacts, Scenario

__all__ = [
    "PRICES_PER_MILLION",
    "ExperimentResult",
    "Variant",
    "estimate_cost",
    "experiment",
    "summarize",
]

# USD per 1M tokens, gpt-realtime (OpenAI pricing page); a run's cost is an estimate from its usage
PRICES_PER_MILLION = {
    "input_text": 4.00,
    "input_audio": 32.00,
    "cached_input": 0.40,
    "output_text": 16.00,
    "output_audio": 64.00,
}
_SETTINGS = (*SESSION_SETTINGS, "instructions")
RESULT_FILE = "result.json"
MAX_REPEATS = 1000
MAX_RUNS = 10_000  # variants x scenarios x repeats in one experiment
MAX_CONCURRENCY = 64


@checked_class
@dataclass
class Variant:
    """One variant: an `agent`, or the base agent with a `prompt` and/or session `settings`;
    `connect_kwargs` (and `architecture`, a shortcut for connect_kwargs["architecture"]) go to
    `voicelab.connect` for its runs."""

    name: str
    agent: Agent | None = None
    prompt: Prompt | str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    connect_kwargs: Mapping[str, Any] = field(default_factory=dict)
    architecture: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("a variant needs a non-empty name")
        if self.agent is not None and not isinstance(self.agent, Agent):
            raise ConfigError(
                f"variant {self.name!r}: agent must be a voicelab.Agent, got {type(self.agent).__name__}"
            )
        if self.prompt is not None and not isinstance(self.prompt, Prompt | str):
            raise ConfigError(
                f"variant {self.name!r}: prompt must be a voicelab.prompts.Prompt or text, "
                f"got {type(self.prompt).__name__}"
            )
        if not isinstance(self.settings, Mapping):
            raise ConfigError(
                f"variant {self.name!r}: settings must be a dict of session fields, e.g. {{'voice': 'ash'}}, "
                f"got {type(self.settings).__name__}"
            )
        unknown = sorted(set(self.settings) - set(_SETTINGS))
        if unknown:
            raise ConfigError(
                f"variant {self.name!r}: unknown setting {unknown[0]!r}; settings are Agent session fields: "
                f"{', '.join(_SETTINGS)} (and connect_kwargs / architecture)"
            )
        if not isinstance(self.connect_kwargs, Mapping):
            raise ConfigError(f"variant {self.name!r}: connect_kwargs must be a dict")
        reserved = sorted(set(self.connect_kwargs) & {"url", "api_key", "record_dir"})
        if reserved:
            raise ConfigError(
                f"variant {self.name!r}: connect_kwargs may not set {reserved[0]!r}; the experiment sets it "
                "(use experiment(url=..., api_key=...))"
            )
        if self.architecture is not None:
            one_of(self.architecture, "architecture", ("realtime", "chained"), where=f"variant {self.name!r}")
        _check_connect_options([self])
        session_fields = {k: v for k, v in self.settings.items() if k in _SETTINGS}
        if session_fields:
            from voicelab.config import SessionConfig

            try:
                SessionConfig(**session_fields)
            except ConfigError as exc:
                raise ConfigError(f"variant {self.name!r}: {exc}") from None

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}"]
        if self.agent is not None:
            parts.append(f"agent={self.agent.name!r}")
        if self.prompt is not None:
            text = self.prompt.render() if isinstance(self.prompt, Prompt) else self.prompt
            parts.append(f"prompt={prompt_hash(text)}")
        if self.settings:
            parts.append(f"settings={sorted(self.settings)}")
        if self.connect_options:
            parts.append(f"connect_kwargs={_public(self.connect_options, None)}")
        return f"Variant({', '.join(parts)})"

    @property
    def connect_options(self) -> dict[str, Any]:
        options = dict(self.connect_kwargs)
        if self.architecture is not None:
            options["architecture"] = self.architecture
        return options

    def resolve(self, base: Agent | None) -> Agent:
        """The agent this variant runs."""
        agent = self.agent if self.agent is not None else base
        if agent is None:
            raise ConfigError(
                f"variant {self.name!r} is a prompt or settings without an agent: pass base=<voicelab.Agent> "
                "to experiment()"
            )
        changes: dict[str, Any] = dict(self.settings)
        if self.prompt is not None:
            changes["instructions"] = self.prompt.render() if isinstance(self.prompt, Prompt) else self.prompt
        return agent.clone(**changes) if changes else agent


def _variants(variants: Any) -> list[Variant]:
    if isinstance(variants, Mapping):
        items = list(variants.items())
    elif isinstance(variants, Sequence) and not isinstance(variants, str):
        items = []
        for entry in variants:
            if isinstance(entry, Variant | Agent):
                items.append((entry.name, entry))
            else:
                raise ConfigError(
                    f"a list of variants holds Variant or Agent values, got {type(entry).__name__}; "
                    "pass a dict {name: Agent | Prompt | settings} to name other kinds"
                )
    else:
        raise ConfigError(
            "variants must be a dict {name: Agent | Prompt | settings dict | Variant} or a list"
        )
    if not items:
        raise ConfigError("experiment needs at least one variant")
    out: list[Variant] = []
    seen: set[str] = set()
    for name, value in items:
        if name in seen:
            raise ConfigError(f"the variant name {name!r} is used twice; give each variant its own name")
        seen.add(name)
        if isinstance(value, Variant):
            out.append(dataclasses.replace(value, name=name))
        elif isinstance(value, Agent):
            out.append(Variant(name, agent=value))
        elif isinstance(value, Prompt | str):
            out.append(Variant(name, prompt=value))
        elif isinstance(value, Mapping):
            settings = dict(value)
            connect_kwargs = settings.pop("connect_kwargs", {})
            architecture = settings.pop("architecture", None)
            out.append(
                Variant(name, settings=settings, connect_kwargs=connect_kwargs, architecture=architecture)
            )
        else:
            raise ConfigError(
                f"variant {name!r} is a {type(value).__name__}; use an Agent, a Prompt, a dict of "
                "settings or a Variant"
            )
    return out


def _scenarios(scenarios: Any) -> list[Scenario]:
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    if (
        not isinstance(scenarios, Sequence)
        or not scenarios
        or not all(isinstance(s, Scenario) for s in scenarios)
    ):
        raise ConfigError("scenarios must be a non-empty list of voicelab.Scenario values")
    names = [s.name for s in scenarios]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"the scenario name {name!r} is used twice; give each scenario its own name")
    return list(scenarios)


def _public(options: Mapping[str, Any], api_key: str | None) -> dict[str, Any]:
    """Connect options as they may be written to disk or shown: credentials masked."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key == "headers" and isinstance(value, Mapping):
            out[key] = redact_headers(value)
        elif isinstance(value, str):
            out[key] = redact_text(value, (api_key or "",))
        else:
            out[key] = value
    return out


def _check_connect_options(variants: list[Variant]) -> None:
    import inspect

    from voicelab.session import connect

    parameters = inspect.signature(connect).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for variant in variants:
        for key in variant.connect_options:
            if key not in parameters:
                raise ConfigError(
                    f"variant {variant.name!r}: voicelab.connect() takes no {key!r} in this version; "
                    f"remove it (connect takes: {', '.join(p for p in parameters if p != 'agent_or_config')})"
                )


def estimate_cost(usage: pd.DataFrame, prices: Mapping[str, float] = PRICES_PER_MILLION) -> float:
    """USD for a run's `tables.usage` rows (cached input tokens at the cached price)."""
    if usage.empty:
        return 0.0

    def total(column: str) -> float:
        return float(pd.to_numeric(usage[column], errors="coerce").fillna(0).sum())

    cached = total("cached_tokens")
    text_in, audio_in = total("input_text_tokens"), total("input_audio_tokens")
    uncached_share = 1.0 - min(1.0, cached / (text_in + audio_in)) if text_in + audio_in else 1.0
    cost = (
        text_in * uncached_share * prices["input_text"]
        + audio_in * uncached_share * prices["input_audio"]
        + cached * prices["cached_input"]
        + total("output_text_tokens") * prices["output_text"]
        + total("output_audio_tokens") * prices["output_audio"]
    )
    return cost / 1e6


# -- running ----------------------------------------------------------------------------------------------
@dataclass
class _Job:
    run_id: str
    variant: Variant
    agent: Agent
    scenario: Scenario
    repeat: int
    fingerprint: str
    folder: Path


def _fingerprint(agent: Agent, variant: Variant, scenario: Scenario, audio: list[Any], target: str) -> str:
    digest = hashlib.sha256()
    config = agent.session_config().to_session()
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(json.dumps(variant.connect_options, sort_keys=True, default=str).encode())
    digest.update(
        json.dumps(None if scenario.stubs is None else scenario.stubs.to_json(), sort_keys=True).encode()
    )
    digest.update(json.dumps([e.to_json() for e in scenario.expect], sort_keys=True).encode())
    for clip in audio:
        digest.update(clip.to_pcm16())
    digest.update(target.encode())
    return digest.hexdigest()[:16]


def _merged_stubs(agent: Agent, scenario: Scenario) -> Stubs | None:
    """The scenario's stubs for the tools this agent (or an agent it hands off to) has, then the agent's own
    stubs for the other tools; None when the scenario stubs nothing."""
    stubs = scenario.fresh_stubs()
    if stubs is None:
        return None
    tools = _tool_names(agent)
    for name in list(stubs.names):
        if name not in tools:
            stubs.remove(name)  # the scenario stubs a tool this variant does not have
    if agent.stubs is not None:
        for name in agent.stubs.names:
            if name not in stubs:
                stub = agent.stubs._stubs[name]  # the agent's own stub for a tool the scenario leaves alone
                stubs._stubs[name] = dataclasses.replace(stub, calls=0)
    # a scenario serves variants with different tools: its stubs for tools this variant lacks do not apply
    # (an Agent refuses stubs that name none of its tools)
    tools = {name for reachable in agent.reachable_agents() for name in reachable.function_tools}
    for name in [n for n in stubs.names if n not in tools]:
        stubs.remove(name)
    return stubs


def _tool_names(agent: Agent) -> set[str]:
    names: set[str] = set()
    todo, seen = [agent], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        names.update(current.function_tools)
        for entry in current.handoff_tools.values():
            todo.extend(entry.targets)
    return names


@checked
async def experiment(
    variants: Mapping[str, Any] | Sequence[Any],
    scenarios: Scenario | Sequence[Scenario],
    repeats: int = 1,
    *,
    base: Agent | None = None,
    out_dir: str | os.PathLike[str] = "experiments/experiment",
    url: str | None = None,
    api_key: str | None = None,
    script: Any = "returns_desk",
    pace: str = "fast",
    concurrency: int = 4,
    realtime: bool = False,
    resume: bool = True,
    progress: bool = True,
    turn_timeout_s: float = 60.0,
) -> ExperimentResult:
    """Run every variant against every scenario `repeats` times; see the module docstring."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"repeats must be a whole number >= 1, got {repeats!r}")
    if repeats > MAX_REPEATS:
        raise ConfigError(f"repeats={repeats} is more than {MAX_REPEATS}; run fewer repeats, e.g. repeats=3")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if concurrency > MAX_CONCURRENCY:
        raise ConfigError(
            f"concurrency={concurrency} is more than {MAX_CONCURRENCY} sessions at once; e.g. concurrency=4"
        )
    if pace not in ("fast", "realtime"):
        raise ConfigError(f"pace must be 'fast' or 'realtime', got {pace!r}")
    number(turn_timeout_s, "turn_timeout_s", lo=0, lo_open=True, hi=3600, unit="seconds", example=60)
    for name, value in (("realtime", realtime), ("resume", resume), ("progress", progress)):
        flag(value, name, where="experiment")
    out_path = output_folder(out_dir, "out_dir", example="'experiments/prompts'", where="experiment")
    if url is None:
        from voicelab.server.app import resolve_script

        resolve_script(script)  # a bad script fails now, also when every run is resumed and no server starts
    if url is not None and url != "openai":
        from voicelab.transports.websocket import realtime_url

        realtime_url(url, "gpt-realtime")  # SessionError naming what is wrong with it, before any run
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ConfigError("api_key must be a non-empty str, or None (OPENAI_API_KEY, or no key offline)")
    if base is not None and not isinstance(base, Agent):
        raise ConfigError(f"base must be a voicelab.Agent, got {type(base).__name__}")
    variant_list = _variants(variants)
    scenario_list = _scenarios(scenarios)
    agents = {v.name: v.resolve(base) for v in variant_list}
    _check_connect_options(variant_list)
    for variant in variant_list:
        for scenario in scenario_list:
            scenario.check_agent(agents[variant.name])
    out = out_path
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out} is a file; pass a folder for the experiment's runs")
    total = len(variant_list) * len(scenario_list) * repeats
    if total > MAX_RUNS:
        raise ConfigError(
            f"{len(variant_list)} variants x {len(scenario_list)} scenarios x {repeats} repeats "
            f"is {total} runs, more than {MAX_RUNS}; run fewer at a time"
        )
    (out / "runs").mkdir(parents=True, exist_ok=True)
    target = "embedded" if url is None else ("openai" if url == "openai" else url)
    audio = {s.name: s.audio_turns() for s in scenario_list}
    jobs: list[_Job] = []
    for variant in variant_list:
        for scenario in scenario_list:
            fingerprint = _fingerprint(agents[variant.name], variant, scenario, audio[scenario.name], target)
            for repeat in range(repeats):
                run_id = f"{_safe(variant.name)}__{scenario.name}__{repeat}"
                jobs.append(
                    _Job(
                        run_id,
                        variant,
                        agents[variant.name],
                        scenario,
                        repeat,
                        fingerprint,
                        out / "runs" / run_id,
                    )
                )
    _write_json(
        out / "experiment.json",
        {
            "format": "voicelab-experiment",
            "version": 1,
            "variants": [
                {
                    "name": v.name,
                    "agent": agents[v.name].name,
                    "prompt_hash": prompt_hash(_instructions(agents[v.name])),
                    "connect_kwargs": _public(v.connect_options, api_key),
                }
                for v in variant_list
            ],
            "scenarios": [s.name for s in scenario_list],
            "repeats": repeats,
            "target": redact_url(target) if target.startswith(("ws:", "wss:", "http")) else target,
            "pace": pace if url is None else None,
        },
    )
    rows: dict[str, dict[str, Any]] = {}
    todo: list[_Job] = []
    for job in jobs:
        done = _finished(job) if resume else None
        if done is not None:
            rows[job.run_id] = {**done, "resumed": True}
        else:
            todo.append(job)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), initial=len(rows), desc="experiment", unit="run", disable=not progress)
    server = None
    try:
        if todo and url is None:
            from voicelab.server import serve

            server = serve(script, pace=pace)  # type: ignore[arg-type]
        session_url = server.url if server is not None else (None if url == "openai" else url)
        key = "sk-local" if server is not None else api_key
        gate = asyncio.Semaphore(concurrency)

        async def run(job: _Job) -> None:
            async with gate:
                row = await _run(job, session_url, key, audio[job.scenario.name], realtime, turn_timeout_s)
            rows[job.run_id] = row
            bar.update(1)

        await asyncio.gather(*(run(job) for job in todo))
    finally:
        bar.close()
        if server is not None:
            server.close()
    ordered = [rows[job.run_id] for job in jobs]
    result = ExperimentResult(
        out_dir=out,
        runs=_runs_frame(ordered),
        agents=agents,
        variants=[v.name for v in variant_list],
        scenarios=scenario_list,
    )
    result.runs.to_csv(out / "runs.csv", index=False)
    result.summary.to_csv(out / "summary.csv")
    return result


async def _run(
    job: _Job, url: str | None, api_key: str | None, turns: list[Any], realtime: bool, turn_timeout_s: float
) -> dict[str, Any]:
    from voicelab.caller import play_turns
    from voicelab.recording import load_recording
    from voicelab.session import connect

    if job.folder.exists():
        shutil.rmtree(job.folder)  # a run cut short earlier: start it again
    stubs = _merged_stubs(job.agent, job.scenario)
    agent = job.agent.clone(stubs=stubs) if stubs is not None else job.agent
    started = time.perf_counter()
    error: str | None = None
    try:
        session = connect(
            agent, url=url, api_key=api_key, record_dir=job.folder, **job.variant.connect_options
        )
        async with session:
            await play_turns(session, turns, realtime=realtime, turn_timeout_s=turn_timeout_s)
    except (VoicelabError, OSError, TypeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    session_s = time.perf_counter() - started
    row: dict[str, Any] = {
        "run_id": job.run_id,
        "variant": job.variant.name,
        "scenario": job.scenario.name,
        "repeat": job.repeat,
    }
    if (job.folder / "events.jsonl").is_file():
        rec = load_recording(job.folder)
        row.update(_measure(job, rec))
    else:
        row.update(_empty_measures(job))
    row.update(
        {
            "error": None if error is None else redact_text(error, (api_key or "",)),
            "passed": error is None and row["passed"],
            "session_s": round(session_s, 4),
            "analysis_s": round(time.perf_counter() - started - session_s, 4),
            "fingerprint": job.fingerprint,
            "recording": str(job.folder),
        }
    )
    job.folder.mkdir(parents=True, exist_ok=True)  # a run whose session never opened has no folder yet
    _write_json(job.folder / RESULT_FILE, row)  # the run is finished: a re-run reuses it
    return {**row, "resumed": False}


def _measure(job: _Job, rec: Any) -> dict[str, Any]:
    from voicelab import tables

    facts = RunFacts.from_recording(rec)
    outcomes = job.scenario.check(facts)
    tool_expectations = [e for e in job.scenario.expect if e.kind == "tool"]
    called = {name for name, _ in facts.tool_calls}
    usage = tables.usage(rec)
    history = tables.history(rec)
    turns = tables.turns(rec)
    latencies = facts.first_audio_ms
    conversation_ms = _conversation_ms(rec.events)
    row: dict[str, Any] = {
        "passed": all(o.passed for o in outcomes.values()),
        "expectations_met": sum(o.passed for o in outcomes.values()),
        "expectations": len(outcomes),
    }
    for label, outcome in outcomes.items():
        row[f"expect: {label}"] = outcome.passed
    row.update(
        {
            "failures": "; ".join(f"{label}: {o.detail}" for label, o in outcomes.items() if not o.passed)
            or None,
            "tool_calls": len(facts.tool_calls),
            "tool_calls_expected": len(tool_expectations),
            "tool_calls_correct": sum(e.name in called for e in tool_expectations),
            "arguments_correct": sum(
                any(n == e.name and e.arguments_match(a) for n, a in facts.tool_calls)
                for e in tool_expectations
            ),
            "guardrail_trips": len(facts.guardrail_trips),
            "interruptions": int(history["interrupted"].sum()) if len(history) else 0,
            "handoffs": len(facts.handoffs),
            "turns": len(turns),
            "responses": len(usage),
            "first_audio_p50_ms": float(np.median(latencies)) if latencies else math.nan,
            "first_audio_max_ms": float(max(latencies)) if latencies else math.nan,
            "first_audio_ms": [round(v, 3) for v in latencies],
            "input_tokens": int(pd.to_numeric(usage["input_tokens"], errors="coerce").fillna(0).sum()),
            "output_tokens": int(pd.to_numeric(usage["output_tokens"], errors="coerce").fillna(0).sum()),
            "cost_usd": round(estimate_cost(usage), 6),
            "conversation_s": round(conversation_ms / 1000.0, 3),
            "prompt_hash": prompt_hash(str(((rec.meta.get("config") or {}).get("instructions")) or "")),
            "agent": rec.meta.get("agent"),
        }
    )
    return row


def _conversation_ms(events: list[dict[str, Any]]) -> float:
    """How long the call would last live: the caller's audio sent (silences included) and the assistant's
    audio received (while it speaks, a live caller waits)."""
    total = 0.0
    for line in events:
        kind = line.get("type")
        if line.get("dir") == "client" and kind == "input_audio_buffer.append":
            ref = (line.get("event") or {}).get("audio")
        elif line.get("dir") == "server" and kind == "response.output_audio.delta":
            ref = (line.get("event") or {}).get("delta")
        else:
            continue
        if isinstance(ref, dict) and isinstance(ref.get("$audio"), dict):
            total += float(ref["$audio"].get("duration_ms") or 0.0)
    return total


def _empty_measures(job: _Job) -> dict[str, Any]:
    row: dict[str, Any] = {"passed": False, "expectations_met": 0, "expectations": len(job.scenario.expect)}
    for e in job.scenario.expect:
        row[f"expect: {e.label}"] = False
    return row


def _finished(job: _Job) -> dict[str, Any] | None:
    path = job.folder / RESULT_FILE
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict) or row.get("fingerprint") != job.fingerprint or row.get("error"):
        return None  # the variant or scenario changed (or the run failed): run it again
    return row


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def _instructions(agent: Agent) -> str:
    return agent.instructions if isinstance(agent.instructions, str) else ""


_FIRST = ["run_id", "variant", "scenario", "repeat", "passed", "expectations_met", "expectations"]
_LAST = [
    "failures",
    "tool_calls",
    "tool_calls_expected",
    "tool_calls_correct",
    "arguments_correct",
    "guardrail_trips",
    "interruptions",
    "handoffs",
    "turns",
    "responses",
    "first_audio_p50_ms",
    "first_audio_max_ms",
    "first_audio_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "conversation_s",
    "session_s",
    "analysis_s",
    "prompt_hash",
    "agent",
    "error",
    "resumed",
    "fingerprint",
    "recording",
]
_INT_COLUMNS = (
    "repeat",
    "expectations_met",
    "expectations",
    "tool_calls",
    "tool_calls_expected",
    "tool_calls_correct",
    "arguments_correct",
    "guardrail_trips",
    "interruptions",
    "handoffs",
    "turns",
    "responses",
    "input_tokens",
    "output_tokens",
)


def _runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    expect_columns: list[str] = []
    for row in rows:
        for key in row:
            if key.startswith("expect: ") and key not in expect_columns:
                expect_columns.append(key)
    columns = [*_FIRST, *expect_columns, *_LAST]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    for column in _INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    for column in ("passed", "resumed"):
        frame[column] = frame[column].fillna(False).astype(bool)
    for column in expect_columns:
        frame[column] = frame[column].astype("boolean")
    for column in (
        "first_audio_p50_ms",
        "first_audio_max_ms",
        "cost_usd",
        "conversation_s",
        "session_s",
        "analysis_s",
    ):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["first_audio_ms"] = frame["first_audio_ms"].map(lambda v: v if isinstance(v, list) else [])
    for column in (
        "run_id",
        "variant",
        "scenario",
        "failures",
        "prompt_hash",
        "agent",
        "error",
        "fingerprint",
        "recording",
    ):
        frame[column] = frame[column].astype("string")
    return frame


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant: runs, pass rate, tool and argument accuracy, p50/p95 end of speech -> first audio over
    every answered turn, guardrail trips, interruptions, errors and cost."""
    records = []
    for variant, group in runs.groupby("variant", sort=False):
        latencies = [v for values in group["first_audio_ms"] for v in values]
        expected = int(group["tool_calls_expected"].sum())
        records.append(
            {
                "variant": variant,
                "runs": len(group),
                "passed": int(group["passed"].sum()),
                "pass_rate": float(group["passed"].mean()),
                "expectations_met_rate": float(
                    group["expectations_met"].sum() / max(1, group["expectations"].sum())
                ),
                "tool_call_accuracy": float(group["tool_calls_correct"].sum() / expected)
                if expected
                else math.nan,
                "argument_accuracy": float(group["arguments_correct"].sum() / expected)
                if expected
                else math.nan,
                "first_audio_p50_ms": float(np.percentile(latencies, 50)) if latencies else math.nan,
                "first_audio_p95_ms": float(np.percentile(latencies, 95)) if latencies else math.nan,
                "guardrail_trips": int(group["guardrail_trips"].sum()),
                "interruptions": int(group["interruptions"].sum()),
                "errors": int(group["error"].notna().sum()),
                "mean_cost_usd": float(group["cost_usd"].mean()),
                "total_cost_usd": float(group["cost_usd"].sum()),
            }
        )
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return frame
    return frame.set_index("variant")


@dataclass
class ExperimentResult:
    """An experiment's `runs` (one row per run) and `summary` (one row per variant)."""

    out_dir: Path
    runs: pd.DataFrame
    agents: dict[str, Agent]
    variants: list[str]
    scenarios: list[Scenario]
    summary: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.runs)

    def __repr__(self) -> str:
        return (
            f"ExperimentResult(variants={self.variants}, scenarios={[s.name for s in self.scenarios]}, "
            f"runs={len(self.runs)}, best={self.best!r}, out_dir={str(self.out_dir)!r})"
        )

    def _repr_html_(self) -> str:
        head = (
            f"<p>experiment <code>{self.out_dir}</code>: {len(self.variants)} variants x "
            f"{len(self.scenarios)} scenarios, {len(self.runs)} runs; best: <b>{self.best}</b> "
            "(<code>.runs</code>, <code>.summary</code>, <code>.figure()</code>)</p>"
        )
        return head + self.summary.to_html(float_format=lambda v: f"{v:.3g}")

    @property
    def best(self) -> str:
        """The variant with the highest pass rate (then the lowest p50 latency, then the lowest cost)."""
        ranked = self.summary.assign(_p50=self.summary["first_audio_p50_ms"].fillna(math.inf)).sort_values(
            ["pass_rate", "_p50", "mean_cost_usd"], ascending=[False, True, True], kind="stable"
        )
        return str(ranked.index[0])

    def agent(self, variant: str) -> Agent:
        """The agent a variant ran."""
        if variant not in self.agents:
            raise ConfigError(
                f"no variant {variant!r} in this experiment; variants: {', '.join(self.variants)}"
            )
        return self.agents[variant]

    def provenance(self, variant: str) -> dict[str, Any]:
        """Where a variant's figures come from, for exports: runs, pass rate, latency, the folder."""
        self.agent(variant)
        row = self.summary.loc[variant]
        runs = self.runs[self.runs["variant"] == variant]
        return {
            "experiment": str(self.out_dir),
            "variant": variant,
            "runs": [str(r) for r in runs["run_id"]],
            "scenarios": [s.name for s in self.scenarios],
            "pass_rate": round(float(row["pass_rate"]), 4),
            "first_audio_p50_ms": None
            if math.isnan(row["first_audio_p50_ms"])
            else round(float(row["first_audio_p50_ms"]), 1),
            "first_audio_p95_ms": None
            if math.isnan(row["first_audio_p95_ms"])
            else round(float(row["first_audio_p95_ms"]), 1),
            "guardrail_trips": int(row["guardrail_trips"]),
            "mean_cost_usd": round(float(row["mean_cost_usd"]), 6),
            "compared_with": [v for v in self.variants if v != variant],
        }

    def figure(self, title: str | None = None) -> Any:
        """Pass rate, end of speech -> first audio (p50 and p95) and cost per run, per variant."""
        from matplotlib.figure import Figure

        s = self.summary
        names = [str(v) for v in s.index]
        x = np.arange(len(names))
        fig = Figure(figsize=(max(6.0, 2.2 * len(names) + 3), 3.4), layout="constrained")
        ax_pass, ax_lat, ax_cost = fig.subplots(1, 3)
        ax_pass.bar(x, s["pass_rate"] * 100, color="#4c72b0")
        ax_pass.set_ylim(0, 105)
        ax_pass.set_ylabel("runs passed (%)")
        ax_pass.set_title("pass rate")
        width = 0.38
        ax_lat.bar(x - width / 2, s["first_audio_p50_ms"], width, label="p50", color="#55a868")
        ax_lat.bar(x + width / 2, s["first_audio_p95_ms"], width, label="p95", color="#c44e52")
        ax_lat.set_ylabel("ms")
        ax_lat.set_title("end of speech -> first audio")
        top = np.nanmax(s[["first_audio_p50_ms", "first_audio_p95_ms"]].to_numpy(dtype=float), initial=0.0)
        if np.isfinite(top) and top > 0:
            ax_lat.set_ylim(0, top * 1.3)  # room for the legend above the bars
        ax_lat.legend(fontsize="small", loc="upper right", ncols=2)
        ax_cost.bar(x, s["mean_cost_usd"] * 100, color="#8172b2")
        ax_cost.set_ylabel("US cents per run (est.)")
        ax_cost.set_title("cost")
        for ax in (ax_pass, ax_lat, ax_cost):
            ax.set_xticks(x, names)
        runs = int(s["runs"].sum())
        fig.suptitle(
            title
            or f"{_count(len(names), 'variant')} x {_count(len(self.scenarios), 'scenario')}, "
            f"{_count(runs, 'run')}"
        )
        return fig

    def save_figure(self, path: str | os.PathLike[str] | None = None) -> Path:
        target = Path(path) if path is not None else self.out_dir / "comparison.png"
        self.figure().savefig(target)
        return target
