"""Conversion of Agents SDK realtime objects (`agents.realtime.RealtimeAgent`, `FunctionTool`, `Handoff`,
`OutputGuardrail`) into voicelab ones. The SDK is imported lazily, only when
you pass its objects.

Notes: a callable `needs_approval` becomes "always ask"; an SDK `Handoff` is invoked (running its callback)
when the model calls it, and the agent it returns is converted then.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from voicelab.agents.guardrails import OutputGuardrail
from voicelab.agents.handoffs import Handoff
from voicelab.agents.tools import FunctionTool, ToolContext
from voicelab.errors import ConfigError

if TYPE_CHECKING:
    from voicelab.agents.agent import Agent


def _run_context(context: Any) -> Any:
    from agents.run_context import RunContextWrapper

    return RunContextWrapper(context=context)


def from_sdk_tool(sdk_tool: Any) -> FunctionTool:
    """A voicelab FunctionTool that calls the SDK tool's `on_invoke_tool` with an SDK ToolContext."""
    if type(sdk_tool).__name__ != "FunctionTool":
        raise ConfigError(
            f"only Agents SDK FunctionTool objects can be converted, got {type(sdk_tool).__name__}; "
            "hosted and MCP tools are not supported in realtime sessions"
        )
    from agents.tool_context import ToolContext as SdkToolContext

    async def invoke_sdk_tool(ctx: ToolContext, **arguments: Any) -> Any:
        text = json.dumps(arguments)
        sdk_context = SdkToolContext(
            context=ctx.context, tool_name=sdk_tool.name, tool_call_id=ctx.call_id, tool_arguments=text
        )
        return await sdk_tool.on_invoke_tool(sdk_context, text)

    needs_approval = sdk_tool.needs_approval
    return FunctionTool(
        name=sdk_tool.name,
        description=sdk_tool.description or "",
        parameters=dict(sdk_tool.params_json_schema),
        func=invoke_sdk_tool,
        needs_approval=bool(needs_approval) if isinstance(needs_approval, bool) else True,
        takes_context=True,
    )


def from_sdk_guardrail(sdk_guardrail: Any, sdk_agent: Any = None) -> OutputGuardrail:
    """Wrap an SDK OutputGuardrail: its function gets an SDK RunContextWrapper and the SDK agent."""
    function = sdk_guardrail.guardrail_function

    def run_sdk_guardrail(context: Any, agent: Any, text: str) -> Any:
        return function(_run_context(context), sdk_agent if sdk_agent is not None else agent, text)

    return OutputGuardrail(run_sdk_guardrail, sdk_guardrail.get_name())


class SdkHandoff(Handoff):
    """An SDK `Handoff` (e.g. from `realtime_handoff`): its target is known only by invoking it, which also
    runs its `on_handoff` callback; the RealtimeAgent it returns is converted then (once per agent)."""

    def __init__(self, sdk_handoff: Any, memo: dict[int, Agent]) -> None:
        self.sdk_handoff = sdk_handoff
        self._memo = memo
        schema = dict(sdk_handoff.input_json_schema or {})
        self._parameters = schema if schema.get("type") == "object" else _EMPTY_OBJECT
        super().__init__(
            agent=None,  # type: ignore[arg-type]
            tool_name=sdk_handoff.tool_name,
            tool_description=sdk_handoff.tool_description,
        )

    @property
    def targets(self) -> list[Agent]:
        return []

    def to_session_tool(self) -> dict[str, Any]:
        return {**super().to_session_tool(), "parameters": self._parameters}

    async def resolve(self, context: Any, arguments: Any) -> Agent:
        text = json.dumps(dict(arguments)) if self._parameters is not _EMPTY_OBJECT else None
        sdk_agent = await self.sdk_handoff.on_invoke_handoff(_run_context(context), text)
        return _convert(sdk_agent, self._memo, {})


_EMPTY_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}


def from_sdk_handoff(entry: Any, memo: dict[int, Agent] | None = None) -> Handoff:
    """A RealtimeAgent or an SDK Handoff -> voicelab Handoff (agents converted once, cycles allowed)."""
    memo = {} if memo is None else memo
    if type(entry).__name__ == "RealtimeAgent":
        return Handoff(_convert(entry, memo, {}))
    if not callable(getattr(entry, "on_invoke_handoff", None)):
        raise ConfigError(
            f"cannot convert handoff {entry!r}; "
            "use a RealtimeAgent or agents.realtime.realtime_handoff(agent)"
        )
    return SdkHandoff(entry, memo)


def from_realtime_agent(sdk_agent: Any, **settings: Any) -> Agent:
    """Convert a RealtimeAgent: instructions (str or function), function tools, handoffs, output guardrails.
    `settings` are extra voicelab Agent fields (voice, turn_detection, stubs, ...) for the top agent."""
    if type(sdk_agent).__name__ != "RealtimeAgent":
        raise ConfigError(f"expected an agents.realtime.RealtimeAgent, got {type(sdk_agent).__name__}")
    return _convert(sdk_agent, {}, settings)


def _convert(sdk_agent: Any, memo: dict[int, Agent], settings: dict[str, Any]) -> Agent:
    from voicelab.agents.agent import Agent

    if id(sdk_agent) in memo:
        return memo[id(sdk_agent)]
    instructions: Any = sdk_agent.instructions
    if instructions is None:
        instructions = ""
    elif not isinstance(instructions, str):

        async def sdk_instructions(context: Any, agent: Any) -> str:
            return await sdk_agent.get_system_prompt(_run_context(context)) or ""

        instructions = sdk_instructions
    agent = Agent(
        name=sdk_agent.name,
        instructions=instructions,
        tools=[from_sdk_tool(t) for t in sdk_agent.tools],
        handoff_description=sdk_agent.handoff_description,
        output_guardrails=[from_sdk_guardrail(g, sdk_agent) for g in sdk_agent.output_guardrails],
        **settings,
    )
    memo[id(sdk_agent)] = agent
    agent.handoffs = [from_sdk_handoff(h, memo) for h in sdk_agent.handoffs]
    agent.validate()
    return agent


__all__ = ["SdkHandoff", "from_realtime_agent", "from_sdk_guardrail", "from_sdk_handoff", "from_sdk_tool"]
