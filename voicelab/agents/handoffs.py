"""Handoffs: another agent exposed to the model as a function tool (`transfer_to_<name>`, or one
`transferAgents` tool with an enum of destinations, the voice agents guide's pattern)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicelab.agents.tools import ToolArgumentsError, check_arguments, validate_tool_name
from voicelab.checks import checked, sequence_of, text
from voicelab.errors import ConfigError

if TYPE_CHECKING:
    from voicelab.agents.agent import Agent


def normalize_tool_name(name: str) -> str:
    """Like the Agents SDK: whitespace and characters outside [a-zA-Z0-9_] become '_', then lowercase."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", re.sub(r"\s", "_", name)).lower()


def transfer_message(agent_name: str) -> str:
    """The function output sent to the model after a handoff (as the Agents SDK does)."""
    return json.dumps({"assistant": agent_name})


@dataclass(eq=False)
class Handoff:
    """A handoff to an agent via a `transfer_to_<name>` tool; `on_handoff(context, arguments)` runs first."""

    agent: Agent
    tool_name: str = ""
    tool_description: str = ""
    on_handoff: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.agent is None and not (self.tool_name and self.tool_description):
            raise ConfigError("handoff() needs the target Agent")
        if not self.tool_name:
            self.tool_name = normalize_tool_name(f"transfer_to_{self.agent.name}")
        if not self.tool_description:
            self.tool_description = (
                f"Handoff to the {self.agent.name} agent to handle the request. "
                f"{self.agent.handoff_description or ''}"
            )
        validate_tool_name(self.tool_name)

    @property
    def name(self) -> str:
        return self.tool_name

    @property
    def targets(self) -> list[Agent]:
        return [self.agent]

    def to_session_tool(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.tool_name,
            "description": self.tool_description,
            "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        }

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        return _decode_object(self.tool_name, arguments)

    async def resolve(self, context: Any, arguments: Mapping[str, Any]) -> Agent:
        if self.on_handoff is not None:
            params = inspect.signature(self.on_handoff).parameters
            result = (
                self.on_handoff(context, dict(arguments)) if len(params) >= 2 else self.on_handoff(context)
            )
            if inspect.isawaitable(result):
                await result
        return self.agent


@checked
def handoff(
    agent: Agent,
    *,
    tool_name: str | None = None,
    tool_description: str | None = None,
    on_handoff: Callable[..., Any] | None = None,
) -> Handoff:
    """A handoff with a custom tool name/description or a callback, for `Agent(handoffs=[...])`."""
    from voicelab.agents.agent import Agent as _Agent

    if not isinstance(agent, _Agent):
        raise ConfigError(f"handoff() takes the target voicelab.Agent, got {type(agent).__name__}")
    if on_handoff is not None and not callable(on_handoff):
        raise ConfigError(f"handoff on_handoff must be a function, got {type(on_handoff).__name__}")
    text(tool_name, "tool_name", none=True, example="transfer_to_billing", where="handoff()")
    text(tool_description, "tool_description", none=True, empty=True, where="handoff()")
    return Handoff(agent, tool_name or "", tool_description or "", on_handoff)


TRANSFER_AGENTS_DESCRIPTION = (
    "Triggers a transfer of the user to a more specialized agent. "
    "Calls escalate to a more specialized agent, "
    "with additional context. Only call this function if one of the available agents is appropriate. "
    "Let the user know you're about to transfer them before doing so."
)


@dataclass(eq=False)
class TransferAgents:
    """One tool `transferAgents(rationale_for_transfer, conversation_context, destination_agent)`.

    `destination_agent` is an enum of the destination agents' names. The rationale and context arrive in the
    Handoff event's arguments and can be read by `on_handoff(context, arguments)`.
    """

    destinations: Sequence[Agent]
    tool_name: str = "transferAgents"
    tool_description: str = TRANSFER_AGENTS_DESCRIPTION
    on_handoff: Callable[..., Any] | None = None
    _by_name: dict[str, Agent] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        validate_tool_name(self.tool_name)
        from voicelab.agents.agent import Agent as _Agent

        self.destinations = sequence_of(
            self.destinations, "destinations", _Agent, what="voicelab.Agent objects", where="TransferAgents"
        )
        if not self.destinations:
            raise ConfigError("TransferAgents needs at least one destination agent")
        self._by_name = {agent.name: agent for agent in self.destinations}
        if len(self._by_name) != len(self.destinations):
            raise ConfigError(
                "TransferAgents destinations have duplicate names; give each agent a unique name"
            )

    @property
    def name(self) -> str:
        return self.tool_name

    @property
    def targets(self) -> list[Agent]:
        return list(self.destinations)

    def parameters(self) -> dict[str, Any]:
        lines = "\n".join(f"- {a.name}: {a.handoff_description or ''}".rstrip() for a in self.destinations)
        return {
            "type": "object",
            "properties": {
                "rationale_for_transfer": {
                    "type": "string",
                    "description": "The reasoning why this transfer is needed.",
                },
                "conversation_context": {
                    "type": "string",
                    "description": "Relevant context from the conversation that will help the recipient "
                    "perform "
                    "the correct action.",
                },
                "destination_agent": {
                    "type": "string",
                    "description": f"The more specialized destination agent that should handle the user's "
                    f"intended request.\n{lines}",
                    "enum": list(self._by_name),
                },
            },
            "required": ["rationale_for_transfer", "conversation_context", "destination_agent"],
            "additionalProperties": False,
        }

    def to_session_tool(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.tool_name,
            "description": self.tool_description,
            "parameters": self.parameters(),
        }

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        decoded = _decode_object(self.tool_name, arguments)
        problems = check_arguments(self.parameters(), decoded)
        if problems:
            raise ToolArgumentsError(
                f"arguments for {self.tool_name} do not fit its schema: {'; '.join(problems)}"
            )
        return decoded

    async def resolve(self, context: Any, arguments: Mapping[str, Any]) -> Agent:
        if self.on_handoff is not None:
            result = self.on_handoff(context, dict(arguments))
            if inspect.isawaitable(result):
                await result
        return self._by_name[arguments["destination_agent"]]


HandoffLike = Handoff | TransferAgents


def _decode_object(name: str, arguments: str) -> dict[str, Any]:
    try:
        decoded = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(f"arguments for {name} are not valid JSON ({exc.msg})") from None
    if not isinstance(decoded, dict):
        raise ToolArgumentsError(f"arguments for {name} must be a JSON object")
    return decoded


__all__ = ["Handoff", "HandoffLike", "TransferAgents", "handoff", "normalize_tool_name", "transfer_message"]
