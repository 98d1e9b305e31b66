"""Export an agent in the form it is deployed in: `voicelab.export(agent, format, path=None) -> str`.

Formats:
- `session-update`: the GA `session.update` client event as JSON (validated with the openai types); its
  `event_id` carries the provenance (`voicelab-export-<prompt hash>[-<variant>]`), so it stays sendable as is.
- `agents-python`: a module for the OpenAI Agents SDK (`agents.realtime`): `RealtimeAgent`s with the tools
  (as `FunctionTool`s answering with the agent's stub outputs, to be replaced by the real implementations),
  handoffs and output guardrails (placeholders that never trip, named like the originals), the
  `RealtimeRunner` config (model settings in the GA shape, guardrail debounce), and `ask(message, url=...)`
  / `python module.py [--url URL] MESSAGE` to try it.
- `agents-typescript`: the same for `@openai/agents` (`RealtimeAgent`, `tool`, `RealtimeSession`).
- `realtime-agents`: an openai-realtime-agents scenario module (`src/app/agentConfigs/<name>/index.ts`):
  the agents, `export const <name>Scenario = [...]` and a default export.
- `markdown`: the agent's instructions (the prompt) with a provenance comment.
- `tools-json`: the tool schemas (GA `session.tools`) and the stubs as JSON.

Provenance (every format): voicelab's version, the agent, the sha256 of its instructions (first 12 hex
digits, as `Prompt.hash`), and, given `experiment=` (an `ExperimentResult`), the variant, its runs, pass
rate and latency figures and the variants it was compared with.
"""

from __future__ import annotations

import difflib
import json
import keyword
import os
import re
import sys
import types
from typing import Any

from voicelab.agents.agent import UNSET, Agent
from voicelab.agents.handoffs import Handoff, TransferAgents
from voicelab.checks import checked, output_file
from voicelab.checks import text as text_arg
from voicelab.errors import ConfigError
from voicelab.prompts import prompt_hash

FORMATS = (
    "session-update",
    "agents-python",
    "agents-typescript",
    "realtime-agents",
    "markdown",
    "tools-json",
)

__all__ = ["FORMATS", "export", "provenance"]


@checked
def export(
    agent: Agent,
    format: str,
    path: str | os.PathLike[str] | None = None,
    *,
    experiment: Any = None,
    variant: str | None = None,
) -> str:
    """The agent in `format` (see the module docstring); also written to `path` when given.
    `experiment`: the ExperimentResult the agent was chosen from (its variant is found by identity, or
    named with `variant=`), for the provenance."""
    if not isinstance(format, str) or format not in FORMATS:
        close = difflib.get_close_matches(format, FORMATS, n=1) if isinstance(format, str) else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown export format {format!r}; {hint}use one of {', '.join(FORMATS)}")
    if not isinstance(agent, Agent):
        raise ConfigError(
            f"export needs a voicelab.Agent, got {type(agent).__name__}; for an experiment's variant pass "
            "result.agent('<variant>')"
        )
    if not isinstance(agent.instructions, str):
        raise ConfigError(
            f"agent {agent.name!r} has instructions computed by a function; export needs text: "
            "agent.clone(instructions=<text>)"
        )
    if experiment is not None and not (hasattr(experiment, "agents") and hasattr(experiment, "runs")):
        raise ConfigError(
            f"export: experiment must be the result of voicelab.experiment(...) (an ExperimentResult), got "
            f"{type(experiment).__name__}"
        )
    if variant is not None:
        text_arg(variant, "variant", where="export")
        if experiment is None:
            raise ConfigError(
                "export: variant= names a variant of an experiment; pass experiment=<the result> too, or "
                "drop variant="
            )
    target = (
        output_file(path, "path", example=f"'{_default_name(agent, format)}'", where="export")
        if path is not None
        else None
    )
    info = provenance(agent, experiment=experiment, variant=variant)
    if experiment is not None:
        agent = _with_scenario_stubs(agent, experiment)
    text = _WRITERS[format](agent, info)
    if target is not None:
        if target.is_dir():
            raise ConfigError(
                f"{target} is a folder; pass a file path such as {target / _default_name(agent, format)}"
            )
        if not target.parent.exists():
            raise ConfigError(f"folder {target.parent} does not exist; create it first")
        target.write_text(text, encoding="utf-8")
    return text


def provenance(agent: Agent, *, experiment: Any = None, variant: str | None = None) -> dict[str, Any]:
    """Where an export comes from (see the module docstring)."""
    from voicelab import __version__

    info: dict[str, Any] = {
        "voicelab": __version__,
        "agent": agent.name,
        "prompt_hash": prompt_hash(agent.instructions if isinstance(agent.instructions, str) else ""),
    }
    if experiment is not None:
        if variant is None:
            found = [name for name, a in experiment.agents.items() if a is agent]
            if not found:
                raise ConfigError(
                    "this agent is not one of the experiment's variants; pass variant='<name>' or "
                    "export result.agent('<name>')"
                )
            variant = found[0]
        info["experiment"] = experiment.provenance(variant)
    return info


def _with_scenario_stubs(agent: Agent, experiment: Any) -> Agent:
    """The agent with the stubs its experiment's scenarios gave tools it has no stub for (the outputs the
    runs were measured with), for the exported tools to answer with."""
    from voicelab.agents.stubs import Stubs

    data = _stubs_json(agent)
    added = False
    for scenario in getattr(experiment, "scenarios", []):
        if scenario.stubs is None:
            continue
        for name, spec in scenario.stubs.to_json()["stubs"].items():
            if name in agent.function_tools and name not in data:
                data[name] = spec
                added = True
    if not added:
        return agent
    return agent.clone(stubs=Stubs.from_json({"voicelab_stubs": 1, "stubs": data}))


# -- shared pieces ----------------------------------------------------------------------------------------
def _agents(agent: Agent) -> list[Agent]:
    """The agent and every agent reachable by handoffs, in discovery order."""
    out: list[Agent] = []
    todo = [agent]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in out):
            continue
        out.append(current)
        for entry in current.handoff_tools.values():
            todo.extend(entry.targets)
    return out


def _stubs_json(agent: Agent) -> dict[str, Any]:
    """The agent's stubs as Stubs JSON entries, without callable ones (code is not exported)."""
    stubs = agent.stubs
    if stubs is None:
        return {}
    out = {}
    for name in stubs.names:
        if stubs.kind(name) != "callable":
            out[name] = stubs._stubs[name].to_json()
    return out


def _stub_output(agent: Agent, name: str) -> str:
    spec = _stubs_json(agent).get(name)
    if spec is not None:
        if "output" in spec:
            return str(spec["output"])
        if spec.get("outputs"):
            return str(spec["outputs"][0])
    return f"The {name} tool is not implemented yet (exported by voicelab: replace this stub)."


def _model_settings(agent: Agent) -> dict[str, Any]:
    """The GA session fields of the agent (without instructions and tools), in the SDKs' shape."""
    session = agent.session_config().to_session()
    audio = session.get("audio", {})
    audio_in = {k: v for k, v in (audio.get("input") or {}).items() if v is not None}
    audio_out = {k: v for k, v in (audio.get("output") or {}).items() if v is not None}
    settings: dict[str, Any] = {
        "model_name": session["model"],
        "output_modalities": session["output_modalities"],
    }
    settings["audio"] = {"input": audio_in, "output": audio_out}
    if agent.tool_choice is not UNSET:
        settings["tool_choice"] = session["tool_choice"]
    if session.get("max_output_tokens") not in (None, "inf"):
        settings["max_output_tokens"] = session["max_output_tokens"]
    return settings


def _header_lines(info: dict[str, Any]) -> list[str]:
    lines = [
        f"Exported by voicelab {info['voicelab']} from agent {info['agent']!r}.",
        f"Prompt sha256 (first 12 hex digits): {info['prompt_hash']}",
    ]
    exp = info.get("experiment")
    if exp:
        lines.append(
            f"Chosen in experiment {exp['experiment']} as variant {exp['variant']!r}: pass rate "
            f"{exp['pass_rate']:.0%}, end of speech -> first audio p50 {exp['first_audio_p50_ms']} ms / p95 "
            f"{exp['first_audio_p95_ms']} ms, {exp['guardrail_trips']} guardrail trips, over runs "
            f"{', '.join(exp['runs'])} (scenarios {', '.join(exp['scenarios'])}; compared with "
            f"{', '.join(exp['compared_with']) or 'nothing'})."
        )
    return lines


def _identifier(name: str, style: str, used: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name) or ["agent"]
    if style == "snake":
        ident = "_".join(w.lower() for w in words)
    else:
        ident = words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:])
    if ident[0].isdigit() or keyword.iskeyword(ident):
        ident = f"agent_{ident}" if style == "snake" else f"agent{ident[:1].upper()}{ident[1:]}"
    base, n = ident, 2
    while ident in used:
        ident, n = f"{base}{'_' if style == 'snake' else ''}{n}", n + 1
    used.add(ident)
    return ident


def _default_name(agent: Agent, format: str) -> str:
    suffix = {"agents-python": "py", "agents-typescript": "ts", "realtime-agents": "ts", "markdown": "md"}
    return f"{_identifier(agent.name, 'snake', set())}.{suffix.get(format, 'json')}"


# -- formats ----------------------------------------------------------------------------------------------
def _session_update(agent: Agent, info: dict[str, Any]) -> str:
    from openai.types.realtime import SessionUpdateEvent

    event = agent.session_config().session_update_event()
    suffix = ""
    if info.get("experiment"):
        suffix = "-" + re.sub(r"[^A-Za-z0-9_-]", "-", info["experiment"]["variant"])
    event["event_id"] = f"voicelab-export-{info['prompt_hash']}{suffix}"[:128]
    SessionUpdateEvent.model_validate(event)
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def _markdown(agent: Agent, info: dict[str, Any]) -> str:
    comment = "\n".join(_header_lines(info)).replace("--", "- -")
    return f"<!--\n{comment}\n-->\n\n{agent.instructions.strip()}\n"  # type: ignore[union-attr]


def _tools_json(agent: Agent, info: dict[str, Any]) -> str:
    data = {
        "format": "voicelab-tools",
        "version": 1,
        "provenance": info,
        "tools": agent.session_tools(),
        "stubs": {"voicelab_stubs": 1, "stubs": _stubs_json(agent)} if agent.stubs is not None else None,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


_PY_HEAD = """\
from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from agents import FunctionTool, GuardrailFunctionOutput, OutputGuardrail, RunContextWrapper
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff

PROVENANCE = {provenance}


def stub_tool(name: str, description: str, parameters: dict[str, Any], output: str) -> FunctionTool:
    \"\"\"A tool answering with a fixed output (voicelab's stub): replace it with the real one.\"\"\"

    async def invoke(context: Any, arguments: str) -> str:
        return output

    return FunctionTool(
        name=name,
        description=description,
        params_json_schema=parameters,
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


def placeholder_guardrail(name: str) -> OutputGuardrail[Any]:
    \"\"\"Stands for the voicelab output guardrail `name`: never trips until you port its check.\"\"\"

    def check(context: RunContextWrapper[Any], agent: Any, output: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info={{"guardrail": name}}, tripwire_triggered=False)

    return OutputGuardrail(guardrail_function=check, name=name)
"""

_PY_TAIL = """\

async def ask(
    message: str, *, url: str | None = None, api_key: str | None = None, timeout: float = 60
) -> str:
    \"\"\"Send one text message; return the first spoken (or written) answer.\"\"\"
    model_config: Any = {{"api_key": api_key or os.environ.get("OPENAI_API_KEY", "")}}
    if url:
        model = RUN_CONFIG["model_settings"]["model_name"]
        joiner = "&" if "?" in url else "?"
        model_config["url"] = url if "model=" in url else f"{{url}}{{joiner}}model={{model}}"
    runner = RealtimeRunner(AGENT, config=RUN_CONFIG)
    async with await runner.run(model_config=model_config) as session:
        await session.send_message(message)

        async def first_answer() -> str:
            async for event in session:
                if event.type == "error":
                    raise RuntimeError(f"the session reported an error: {{event.error}}")
                if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    data = event.data.data
                    if data.get("type") == "response.done":
                        output = data["response"].get("output", [])
                        parts = [p for item in output for p in item.get("content") or []]
                        answer = "".join(p.get("transcript") or p.get("text") or "" for p in parts)
                        if answer:
                            return answer
            return ""

        return await asyncio.wait_for(first_answer(), timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("message", help="what the caller says")
    parser.add_argument("--url", default=None, help="a Realtime WebSocket URL (default: the OpenAI API)")
    args = parser.parse_args()
    print(asyncio.run(ask(args.message, url=args.url)))


if __name__ == "__main__":
    main()
"""


def _agents_python(agent: Agent, info: dict[str, Any]) -> str:
    agents = _agents(agent)
    used: set[str] = {
        "AGENT",
        "RUN_CONFIG",
        "PROVENANCE",
        "ask",
        "main",
        "stub_tool",
        "placeholder_guardrail",
    }
    names = {id(a): _identifier(a.name, "snake", used) for a in agents}
    doc = [
        *_header_lines(info),
        "",
        "Try it: python THIS_FILE.py [--url URL] 'What the caller says'",
        "(OPENAI_API_KEY from the environment; --url for another Realtime server, e.g. `voicelab serve`).",
    ]
    out: list[str] = ['"""' + "\n".join(doc) + '\n"""', "", _PY_HEAD.format(provenance=_py(info))]
    for current in agents:
        out += ["", f"{names[id(current)]} = RealtimeAgent(", f"    name={_py(current.name)},"]
        out.append(
            f"    instructions={_py(current.instructions if isinstance(current.instructions, str) else '')},"
        )
        if current.handoff_description:
            out.append(f"    handoff_description={_py(current.handoff_description)},")
        out.append("    tools=[")
        for t in current.function_tools.values():
            out += [
                "        stub_tool(",
                f"            {_py(t.name)},",
                f"            {_py(t.description)},",
                f"            {_py(t.parameters)},",
                f"            {_py(_stub_output(current, t.name))},",
                "        ),",
            ]
        out += ["    ],", ")"]
    for current in agents:
        entries = []
        for entry in current.handoff_tools.values():
            if isinstance(entry, TransferAgents):  # no such tool in the SDK: one handoff per destination
                entries += [f"    realtime_handoff({names[id(target)]})," for target in entry.targets]
            elif isinstance(entry, Handoff) and entry.agent is not None:
                entries += [
                    "    realtime_handoff(",
                    f"        {names[id(entry.agent)]},",
                    f"        tool_name_override={_py(entry.tool_name)},",
                    f"        tool_description_override={_py(entry.tool_description)},",
                    "    ),",
                ]
        if entries:
            out += [f"{names[id(current)]}.handoffs = [", *entries, "]"]
    guardrails = list(dict.fromkeys(g.name for a in agents for g in a.output_guardrails))
    out += [
        "",
        f"AGENT = {names[id(agent)]}",
        "",
        "RUN_CONFIG: Any = {",
        f'    "model_settings": {_py(_model_settings(agent))},',
        '    "output_guardrails": [',
        *[f"        placeholder_guardrail({_py(g)})," for g in guardrails],
        "    ],",
        f'    "guardrails_settings": {{"debounce_text_length": {int(agent.debounce_text_length)}}},',
        '    "tracing_disabled": True,',
        "}",
        "",
        _PY_TAIL.format(),
    ]
    return "\n".join(out)


def _py(value: Any) -> str:
    """A Python literal of JSON-like data (True/False/None, not true/false/null)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(str(k))}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return json.dumps(str(value))


def _ts_agents(agent: Agent, used: set[str]) -> tuple[list[str], dict[int, str]]:
    agents = _agents(agent)
    names = {id(a): _identifier(a.name, "camel", used) + "Agent" for a in agents}
    lines: list[str] = []
    for current in agents:
        tools = []
        for t in current.function_tools.values():
            tools.append(
                "    tool({\n"
                f"      name: {json.dumps(t.name)},\n"
                f"      description: {json.dumps(t.description)},\n"
                f"      parameters: {_ts_parameters(t.parameters)},\n"
                "      strict: false,\n"
                f"      execute: async () => {json.dumps(_stub_output(current, t.name), ensure_ascii=False)}"
                ",\n"
                "    }),"
            )
        lines.append(f"export const {names[id(current)]} = new RealtimeAgent({{")
        lines.append(f"  name: {json.dumps(current.name)},")
        if current.voice is not UNSET and isinstance(current.voice, str):
            lines.append(f"  voice: {json.dumps(current.voice)},")
        lines.append(f"  instructions: {json.dumps(current.instructions, ensure_ascii=False)},")
        if current.handoff_description:
            lines.append(f"  handoffDescription: {json.dumps(current.handoff_description)},")
        lines.append("  tools: [")
        lines.extend(tools)
        lines.append("  ],")
        lines.append("});")
        lines.append("")
    for current in agents:
        targets: list[str] = []
        for entry in current.handoff_tools.values():
            targets.extend(names[id(t)] for t in entry.targets)
        if targets:
            lines.append(f"{names[id(current)]}.handoffs = [{', '.join(dict.fromkeys(targets))}];")
    return lines, names


def _ts_parameters(schema: dict[str, Any]) -> str:
    """A JSON schema as @openai/agents' non-strict JsonObjectSchema literal (`strict: false`: voicelab tools
    may have optional arguments, which strict mode forbids): `type: 'object'` and `additionalProperties:
    true` typed as literals."""
    rest = {
        k: v for k, v in schema.items() if k not in ("type", "properties", "required", "additionalProperties")
    }
    parts = [
        "type: 'object' as const",
        f"properties: {json.dumps(schema.get('properties', {}), ensure_ascii=False)}",
        f"required: {json.dumps(list(schema.get('required', [])))}",
        "additionalProperties: true as const",  # the SDK types a non-strict schema so
        *(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in rest.items()),
    ]
    return "{ " + ", ".join(parts) + " }"


def _ts_comment(info: dict[str, Any]) -> str:
    return "/**\n" + "\n".join(f" * {line}" for line in _header_lines(info)) + "\n */"


def _agents_typescript(agent: Agent, info: dict[str, Any]) -> str:
    used: set[str] = {"session", "connect", "provenance", "outputGuardrails"}
    agent_lines, names = _ts_agents(agent, used)
    settings = _model_settings(agent)
    audio = settings["audio"]
    config: dict[str, Any] = {
        "outputModalities": settings["output_modalities"],
        "audio": {
            "input": {_camel(k): v for k, v in audio["input"].items()},
            "output": {_camel(k): v for k, v in audio["output"].items()},
        },
    }
    guardrails = list(dict.fromkeys(g.name for a in _agents(agent) for g in a.output_guardrails))
    lines = [
        _ts_comment(info),
        "import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents/realtime';",
        "import type { RealtimeOutputGuardrail } from '@openai/agents/realtime';",
        "",
        f"export const provenance = {json.dumps(info, indent=2)};",
        "",
        *agent_lines,
        "",
        "// Placeholders named like the voicelab output guardrails: they never trip until you port",
        "// each check.",
        "export const outputGuardrails: RealtimeOutputGuardrail[] = [",
        *[
            f"  {{ name: {json.dumps(g)}, "
            "execute: async () => ({ tripwireTriggered: false, outputInfo: {} }) },"
            for g in guardrails
        ],
        "];",
        "",
        f"export const session = new RealtimeSession({names[id(agent)]}, {{",
        "  transport: 'websocket',",
        f"  model: {json.dumps(settings['model_name'])},",
        "  outputGuardrails,",
        f"  outputGuardrailSettings: {{ debounceTextLength: {int(agent.debounce_text_length)} }},",
        f"  config: {json.dumps(config)},",
        "});",
        "",
        "/** Connect with an API key (or an ephemeral client key); `url` for another Realtime server. */",
        "export async function connect(apiKey: string, url?: string): Promise<RealtimeSession> {",
        "  await session.connect(url ? { apiKey, url } : { apiKey });",
        "  return session;",
        "}",
        "",
    ]
    return "\n".join(lines)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _realtime_agents(agent: Agent, info: dict[str, Any]) -> str:
    used: set[str] = set()
    base = _identifier(agent.name, "camel", set())
    used.update({f"{base}Scenario", f"{base}CompanyName"})
    agent_lines, names = _ts_agents(agent, used)
    ordered = [names[id(a)] for a in _agents(agent)]
    lines = [
        _ts_comment(info),
        "// An openai-realtime-agents scenario: save as src/app/agentConfigs/<name>/index.ts and add it to",
        "// allAgentSets in src/app/agentConfigs/index.ts.",
        "import { RealtimeAgent, tool } from '@openai/agents/realtime';",
        "",
        *agent_lines,
        "",
        "// The first agent is the one the session starts with.",
        f"export const {base}Scenario = [{', '.join(ordered)}];",
        "",
        f"export default {base}Scenario;",
        "",
    ]
    return "\n".join(lines)


_WRITERS = {
    "session-update": _session_update,
    "agents-python": _agents_python,
    "agents-typescript": _agents_typescript,
    "realtime-agents": _realtime_agents,
    "markdown": _markdown,
    "tools-json": _tools_json,
}


class _CallableModule(types.ModuleType):
    """`voicelab.export` is both this module and the function: importing the module (which sets the
    package attribute) must not hide `voicelab.export(agent, format)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
