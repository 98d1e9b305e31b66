"""Every export format checked by its real consumer: the openai types and the embedded server, the Agents SDK
(Python) against `voicelab serve`, `tsc` with @openai/agents (TypeScript), Prompt.parse, Stubs."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import websockets

import voicelab
from voicelab.agents import Agent, output_guardrail, tool
from voicelab.errors import ConfigError
from voicelab.export import FORMATS, export
from voicelab.prompts import Prompt

PROMPT = Prompt(
    role="You are the returns desk of an online shop.",
    tone="Warm and brief.",
    tools="Look orders up with `lookup_order`; hand callers who ask for a person to `transfer_to_human`.",
)


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order by its number.

    Args:
        order_number: The order number as the caller said it.
    """
    return "real implementation"


@tool
def create_return_label(delivery: str = "email") -> str:
    """Create a prepaid return label."""
    return "sent"


@output_guardrail
def no_refund_promises(context: Any, agent: Any, text: str) -> bool:
    return "refund" in text.lower()


def make_agent() -> Agent:
    human = Agent(
        name="human", instructions="You are a person at the returns desk.", handoff_description="A person."
    )
    return Agent(
        name="Returns desk",
        instructions=PROMPT.render(),
        tools=[lookup_order, create_return_label],
        handoffs=[human],
        output_guardrails=[no_refund_promises],
        voice="marin",
        turn_detection={"type": "server_vad", "silence_duration_ms": 400},
        stubs=voicelab.Stubs().fixed("lookup_order", "It is a pair of blue shoes."),
        debounce_text_length=50,
    )


def transfer_agent() -> Agent:
    from voicelab.agents import TransferAgents

    billing = Agent(name="billing", instructions="Billing.", handoff_description="Invoices.")
    returns = Agent(name="returns", instructions="Returns.", tools=[lookup_order])
    return Agent(
        name="router", instructions="Route the caller.", handoffs=[TransferAgents([billing, returns])]
    )


def test_transfer_agents_become_one_sdk_handoff_per_destination(tmp_path) -> None:
    pytest.importorskip("agents")
    path = tmp_path / "router.py"
    export(transfer_agent(), "agents-python", path)
    module = load_module(path)
    assert [h.agent_name for h in module.AGENT.handoffs] == ["billing", "returns"]
    assert [t.name for t in module.returns.tools] == ["lookup_order"]


def load_module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"exported_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_format_and_bad_agents(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown export format 'yaml'; use one of session-update"):
        export(make_agent(), "yaml")
    with pytest.raises(ConfigError, match=r"needs a voicelab\.Agent"):
        export("agent", "markdown")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="computed by a function"):
        export(Agent(name="a", instructions=lambda ctx, agent: "x"), "markdown")
    with pytest.raises(ConfigError, match="is a folder"):
        export(make_agent(), "markdown", tmp_path)


def test_every_format_carries_the_prompt_hash(tmp_path) -> None:
    agent = make_agent()
    for format in FORMATS:
        path = tmp_path / f"out-{format}"
        text = export(agent, format, path)
        assert path.read_text() == text
        assert PROMPT.hash in text, format
        assert "sk-" not in text


async def test_session_update_is_accepted_by_the_openai_types_and_a_server(fast_server) -> None:
    from openai.types.realtime import SessionUpdateEvent

    event = json.loads(export(make_agent(), "session-update"))
    SessionUpdateEvent.model_validate(event)
    assert event["event_id"] == f"voicelab-export-{PROMPT.hash}"
    assert event["session"]["instructions"] == PROMPT.render()
    assert [t["name"] for t in event["session"]["tools"]] == [
        "lookup_order",
        "create_return_label",
        "transfer_to_human",
    ]
    async with websockets.connect(fast_server.url + "?model=gpt-realtime") as ws:
        await ws.send(json.dumps(event))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] != "error", reply
            if reply["type"] == "session.updated":
                break
    session = reply["session"]
    assert session["instructions"] == PROMPT.render()
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    assert session["audio"]["output"]["voice"] == "marin"


def test_markdown_and_tools_json_read_back(tmp_path) -> None:
    agent = make_agent()
    markdown = export(agent, "markdown")
    assert markdown.startswith("<!--\nExported by voicelab")
    assert Prompt.parse(markdown) == PROMPT
    data = json.loads(export(agent, "tools-json"))
    assert data["format"] == "voicelab-tools" and data["provenance"]["prompt_hash"] == PROMPT.hash
    from openai.types.realtime.realtime_function_tool import RealtimeFunctionTool

    for entry in data["tools"]:
        RealtimeFunctionTool.model_validate(entry)
    stubs = voicelab.Stubs.from_json(data["stubs"])
    assert stubs.kind("lookup_order") == "fixed"


def test_agents_python_runs_unchanged_against_voicelab_serve(tmp_path) -> None:
    pytest.importorskip("agents")
    agent = make_agent()
    path = tmp_path / "returns_desk_agent.py"
    export(agent, "agents-python", path)
    module = load_module(path)
    # what the SDK got: the agents, tools, handoffs, guardrails and runner settings
    assert module.AGENT.name == "Returns desk"
    assert [t.name for t in module.AGENT.tools] == ["lookup_order", "create_return_label"]
    assert module.AGENT.handoffs[0].tool_name == "transfer_to_human"
    assert module.RUN_CONFIG["guardrails_settings"] == {"debounce_text_length": 50}
    assert [g.get_name() for g in module.RUN_CONFIG["output_guardrails"]] == ["no_refund_promises"]
    settings = module.RUN_CONFIG["model_settings"]
    assert settings["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    assert module.PROVENANCE["prompt_hash"] == PROMPT.hash
    with voicelab.serve("returns_desk", pace="fast") as server:
        reply = asyncio.run(
            module.ask("The order number is four five six seven.", url=server.url, api_key="sk-local")
        )
        assert reply == (
            "I found order four five six seven. It is a pair of blue shoes. Shall I send you a return label?"
        )
        handed = asyncio.run(
            module.ask("Yes, please transfer me to a person.", url=server.url, api_key="sk-local")
        )
        assert handed == "Transferring you now. A person will be with you shortly."
        # and as a script, the way a user runs it
        done = subprocess.run(
            [sys.executable, str(path), "--url", server.url, "Hi, I would like to return an order."],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OPENAI_API_KEY": "sk-local"},
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "I can help with that. What is your order number?"


def _npm_agents() -> Path:
    """A folder with @openai/agents and typescript installed by npm (cached between runs, never committed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the TypeScript exports are not type-checked")
    folder = Path(os.environ.get("VOICELAB_NPM_DIR", Path(tempfile.gettempdir()) / "voicelab-npm-agents"))
    tsc = folder / "node_modules" / ".bin" / "tsc"
    if not (tsc.exists() and (folder / "node_modules" / "@openai" / "agents").is_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"name": "voicelab-ts-check", "private": true}\n')
        try:
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--cache",
                    str(folder / ".npm-cache"),
                    "@openai/agents",
                    "typescript",
                ],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of @openai/agents timed out (is the npm registry reachable?)")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"npm could not install @openai/agents (registry unreachable?): {last}")
    return folder


@pytest.mark.parametrize("format", ["agents-typescript", "realtime-agents"])
def test_typescript_exports_type_check_against_openai_agents(format, tmp_path) -> None:
    folder = _npm_agents()
    work = Path(tempfile.mkdtemp(dir=folder, prefix="check-"))
    try:
        source = work / "agent.ts"
        export(make_agent(), format, source)
        transfer = work / "transfer.ts"  # a TransferAgents router and a tool-less agent too
        export(transfer_agent(), format, transfer)
        done = subprocess.run(
            [
                str(folder / "node_modules" / ".bin" / "tsc"),
                "--noEmit",
                "--strict",
                "--skipLibCheck",
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
                "--target",
                "es2022",
                str(source),
                str(transfer),
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        text = source.read_text()
        assert "new RealtimeAgent(" in text and "humanAgent" in text
        if format == "realtime-agents":
            assert "export const returnsDeskScenario = [returnsDeskAgent, humanAgent];" in text
            assert "export default returnsDeskScenario;" in text
        else:
            assert "debounceTextLength: 50" in text and "new RealtimeSession(returnsDeskAgent" in text
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def test_provenance_names_the_experiment(tmp_path) -> None:
    from voicelab.scenarios import Scenario, expect

    base = make_agent()
    scenario = Scenario(
        "hello",
        ["Hi, I would like to return an order."],
        stubs={"create_return_label": "Label sent.", "lookup_order": "from the scenario"},
        expect=[expect.says("order number")],
    )
    result = await voicelab.experiment(
        {"short": PROMPT, "long": PROMPT.replace(pacing="Slow.")},
        [scenario],
        base=base,
        out_dir=tmp_path / "exp",
        progress=False,
    )
    chosen = result.agent("long")
    markdown = export(chosen, "markdown", experiment=result)
    assert "as variant 'long': pass rate 100%" in markdown and "long__hello__0" in markdown
    assert "compared with short" in markdown
    data = json.loads(export(chosen, "tools-json", experiment=result))
    assert data["provenance"]["experiment"]["variant"] == "long"
    assert data["provenance"]["prompt_hash"] == PROMPT.replace(pacing="Slow.").hash
    # the tools answer with what the runs used: the agent's own stubs, else the scenario's
    assert data["stubs"]["stubs"]["create_return_label"] == {"kind": "fixed", "output": "Label sent."}
    assert data["stubs"]["stubs"]["lookup_order"]["output"] == "It is a pair of blue shoes."
    assert '"Label sent."' in export(chosen, "agents-python", experiment=result)
    assert json.loads(export(chosen, "session-update", experiment=result))["event_id"].endswith("-long")
    with pytest.raises(ConfigError, match="not one of the experiment's variants"):
        export(base, "markdown", experiment=result)


def test_export_arguments_of_the_wrong_kind(tmp_path) -> None:
    agent = make_agent()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"experiment must be the result of voicelab\.experiment"):
        export(agent, "markdown", experiment=5)
    with pytest.raises(ConfigError, match="pass experiment=<the result> too"):
        export(agent, "markdown", variant="v1")
    with pytest.raises(ConfigError, match="path must be a path"):
        export(agent, "markdown", 5)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        export(agent, "markdown", a_file / "agent.md")
    with pytest.raises(ConfigError, match="did you mean 'agents-python'"):
        export(agent, "agents_python")
