"""Agent: the configuration of a voice agent (instructions, tools, handoffs, guardrails, session settings)."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voicelab.agents.guardrails import DEFAULT_DEBOUNCE_TEXT_LENGTH, OutputGuardrail, default_follow_up
from voicelab.agents.handoffs import Handoff, HandoffLike, TransferAgents
from voicelab.agents.stubs import Stubs
from voicelab.agents.tools import FunctionTool, function_tool
from voicelab.checks import checked, checked_class, takes_args, unknown_fields
from voicelab.errors import ConfigError

if TYPE_CHECKING:
    from voicelab.agents.runtime import AgentRuntime
    from voicelab.config import SessionConfig


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""A session setting left to SessionConfig's default (None is a value: turn_detection=None disables it)."""

MAX_DEBOUNCE = 100_000  # characters: a longer interval is "only at the end" (-1)

SESSION_SETTINGS = (
    "model",
    "voice",
    "output_modalities",
    "input_format",
    "output_format",
    "turn_detection",
    "transcription",
    "noise_reduction",
    "tool_choice",
    "max_output_tokens",
    "speed",
)


@checked_class
@dataclass(eq=False)
class Agent:
    """A voice agent's configuration. `session_config()` turns it into a SessionConfig; `create_listener()`
    gives the runtime that runs its tools, stubs, approvals, guardrails and handoffs on a session."""

    name: str
    instructions: str | Callable[..., Any] = ""
    tools: list[Any] = field(default_factory=list)
    handoffs: list[Any] = field(default_factory=list)
    handoff_description: str | None = None
    output_guardrails: list[Any] = field(default_factory=list)
    model: Any = UNSET
    voice: Any = UNSET
    output_modalities: Any = UNSET
    input_format: Any = UNSET
    output_format: Any = UNSET
    turn_detection: Any = UNSET
    transcription: Any = UNSET
    noise_reduction: Any = UNSET
    tool_choice: Any = UNSET
    max_output_tokens: Any = UNSET
    speed: Any = UNSET
    stubs: Stubs | None = None
    context: Any = None
    debounce_text_length: int = DEFAULT_DEBOUNCE_TEXT_LENGTH
    guardrail_follow_up: str | Callable[[list[str]], str] | None = default_follow_up

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("an Agent needs a non-empty name, e.g. Agent(name='support', ...)")
        if not isinstance(self.instructions, str) and not callable(self.instructions):
            raise ConfigError(
                f"Agent {self.name!r}: instructions must be a string or a function (context, agent) -> str, "
                f"got {type(self.instructions).__name__}"
            )
        if not isinstance(self.instructions, str):
            takes_args(
                self.instructions,
                2,
                "instructions",
                example="def instructions(context, agent) -> str",
                where=f"Agent {self.name!r}",
            )
        for attr in ("tools", "handoffs", "output_guardrails"):
            value = getattr(self, attr)
            if not isinstance(value, list | tuple):
                raise ConfigError(f"Agent {self.name!r}: {attr} must be a list, got {type(value).__name__}")
        self.tools = [_as_tool(self.name, t) for t in self.tools]
        self.handoffs = [_as_handoff(self.name, h) for h in self.handoffs]
        self.output_guardrails = [_as_guardrail(self.name, g) for g in self.output_guardrails]
        if self.stubs is not None and not isinstance(self.stubs, Stubs):
            raise ConfigError(
                f"Agent {self.name!r}: stubs must be a voicelab.Stubs, got {type(self.stubs).__name__}"
            )
        debounce = self.debounce_text_length
        if (
            isinstance(debounce, bool)
            or not isinstance(debounce, int)
            or debounce == 0
            or debounce < -1
            or debounce > MAX_DEBOUNCE
        ):
            raise ConfigError(
                f"Agent {self.name!r}: debounce_text_length={debounce!r} must be a whole number of "
                f"characters from 1 to {MAX_DEBOUNCE} (check the transcript every N), or -1 to check "
                "only at the end of each item"
            )
        follow_up = self.guardrail_follow_up
        if follow_up is not None and not isinstance(follow_up, str) and not callable(follow_up):
            raise ConfigError(
                f"Agent {self.name!r}: guardrail_follow_up must be a str, a function (names) -> str, or None "
                f"for no follow-up; got {type(follow_up).__name__}"
            )
        if self.handoff_description is not None and not isinstance(self.handoff_description, str):
            raise ConfigError(
                f"Agent {self.name!r}: handoff_description must be a str or None, got "
                f"{type(self.handoff_description).__name__}"
            )
        self._check_settings()
        self.validate()
        if self.stubs is not None:
            self.check_stubs(self.stubs)

    # -- definition checks --------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check names are unique across tools and handoffs (run again when lists were changed in place)."""
        seen: dict[str, str] = {}
        for entry in [*self.tools, *self.handoffs]:
            if not isinstance(entry, FunctionTool | Handoff | TransferAgents):
                entry = _as_handoff(self.name, entry) if not isinstance(entry, FunctionTool) else entry
            kind = "tool" if isinstance(entry, FunctionTool) else "handoff"
            if entry.name in seen:
                raise ConfigError(
                    f"Agent {self.name!r}: the name {entry.name!r} is used by a {seen[entry.name]} "
                    f"and a {kind}; tool and handoff names must be unique "
                    "(rename one with @tool(name=...) or handoff(tool_name=...))"
                )
            seen[entry.name] = kind

    def _check_settings(self) -> None:
        """The session settings given to the agent, checked now (not at connect) by SessionConfig itself."""
        from voicelab.config import SessionConfig

        settings = {
            name: getattr(self, name) for name in SESSION_SETTINGS if getattr(self, name) is not UNSET
        }
        try:
            SessionConfig(**settings)
        except ConfigError as exc:
            raise ConfigError(f"Agent {self.name!r}: {exc}") from None

    def reachable_agents(self) -> list[Agent]:
        """This agent and every agent its handoffs lead to, directly or not (each once)."""
        found: list[Agent] = []
        stack: list[Agent] = [self]
        while stack:
            agent = stack.pop()
            if any(agent is seen for seen in found):
                continue
            found.append(agent)
            for entry in agent.handoffs:
                resolved = _as_handoff(agent.name, entry)
                stack.extend(a for a in getattr(resolved, "targets", []) if isinstance(a, Agent))
        return found

    def check_stubs(self, stubs: Stubs) -> None:
        """ConfigError for a stub whose name is no tool of this agent or of an agent it hands off to: such a
        stub would never answer anything (usually a misspelt name)."""
        if not isinstance(stubs, Stubs):
            raise ConfigError(
                f"Agent {self.name!r}: check_stubs() takes a voicelab.Stubs, got {type(stubs).__name__}"
            )
        tools = sorted({name for agent in self.reachable_agents() for name in agent.function_tools})
        for name in stubs.names:
            if name not in tools:
                close = difflib.get_close_matches(name, tools, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"Agent {self.name!r}: stub {name!r} names no tool of this agent or the agents it hands "
                    f"off to; {hint}tools: {', '.join(tools) or 'none'}. Fix the name, or "
                    f"stubs.remove({name!r})."
                )

    @property
    def function_tools(self) -> dict[str, FunctionTool]:
        return {t.name: _as_tool(self.name, t) for t in self.tools}

    @property
    def handoff_tools(self) -> dict[str, HandoffLike]:
        resolved = [_as_handoff(self.name, h) for h in self.handoffs]
        return {h.name: h for h in resolved}

    def session_tools(self) -> list[dict[str, Any]]:
        """GA `session.tools`: the function tools, then one tool per handoff."""
        self.validate()
        return [t.to_session_tool() for t in self.function_tools.values()] + [
            h.to_session_tool() for h in self.handoff_tools.values()
        ]

    # -- instructions and config --------------------------------------------------------------------------
    async def resolve_instructions(self, context: Any = None) -> str:
        if isinstance(self.instructions, str):
            return self.instructions
        result = self.instructions(context if context is not None else self.context, self)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, str):
            raise ConfigError(
                f"Agent {self.name!r}: the instructions function returned "
                f"{type(result).__name__}; return a str"
            )
        return result

    def session_settings(self, instructions: str) -> dict[str, Any]:
        settings: dict[str, Any] = {"instructions": instructions, "tools": self.session_tools()}
        for name in SESSION_SETTINGS:
            value = getattr(self, name)
            if value is not UNSET:
                settings[name] = value
        return settings

    def session_config(self, context: Any = None) -> SessionConfig:
        """The SessionConfig for this agent. Async instruction functions need `await session_config_async()`
        (inside a running event loop the runtime resolves them when the session starts)."""
        from voicelab.config import SessionConfig

        if isinstance(self.instructions, str):
            instructions = self.instructions
        else:
            result = self.instructions(context if context is not None else self.context, self)
            if inspect.isawaitable(result):
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    instructions = asyncio.run(_await(result))
                else:
                    if inspect.iscoroutine(result):
                        result.close()
                    instructions = ""
            else:
                instructions = result
            if not isinstance(instructions, str):
                raise ConfigError(
                    f"Agent {self.name!r}: the instructions function returned {type(instructions).__name__}; "
                    "return a str"
                )
        return SessionConfig(**self.session_settings(instructions))

    async def session_config_async(self, context: Any = None) -> SessionConfig:
        from voicelab.config import SessionConfig

        return SessionConfig(**self.session_settings(await self.resolve_instructions(context)))

    @property
    def has_async_instructions(self) -> bool:
        return not isinstance(self.instructions, str) and (
            inspect.iscoroutinefunction(self.instructions)
            or inspect.iscoroutinefunction(type(self.instructions).__call__)
        )

    def create_listener(self, *, stubs: Stubs | None = None, context: Any = None) -> AgentRuntime:
        from voicelab.agents.runtime import AgentRuntime

        if stubs is not None and not isinstance(stubs, Stubs):
            raise ConfigError(
                f"Agent {self.name!r}: stubs must be a voicelab.Stubs, got {type(stubs).__name__}"
            )
        chosen = stubs if stubs is not None else self.stubs
        if chosen is not None:
            self.check_stubs(chosen)  # stubs added after the Agent was made are checked here
        return AgentRuntime(self, stubs=stubs, context=context)

    @checked
    def clone(self, **changes: Any) -> Agent:
        """A copy with `changes` applied; list fields are copied so the two agents do not share them."""
        unknown_fields(changes, [f.name for f in dataclasses.fields(self)], "Agent.clone: an Agent")
        for name in ("tools", "handoffs", "output_guardrails"):
            changes.setdefault(name, list(getattr(self, name)))
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise ConfigError(f"Agent.clone: {exc}; use the Agent field names") from None

    @classmethod
    def from_realtime_agent(cls, agent: Any, **settings: Any) -> Agent:
        """Convert an Agents SDK `agents.realtime.RealtimeAgent` (tools, handoffs, guardrails included)."""
        from voicelab.agents.sdk import from_realtime_agent

        return from_realtime_agent(agent, **settings)

    def __repr__(self) -> str:
        tools = [t.name for t in self.tools]
        handoffs = [h.name for h in self.handoffs]
        return f"Agent(name={self.name!r}, tools={tools}, handoffs={handoffs})"


async def _await(value: Any) -> Any:
    return await value


def _as_tool(agent_name: str, entry: Any) -> FunctionTool:
    if isinstance(entry, FunctionTool):
        return entry
    if _is_sdk_object(entry, "FunctionTool"):
        from voicelab.agents.sdk import from_sdk_tool

        return from_sdk_tool(entry)
    if callable(entry) and not isinstance(entry, Agent):
        return function_tool(entry)
    raise ConfigError(
        f"Agent {agent_name!r}: tools must be @voicelab.tool functions or FunctionTool objects, "
        f"got {type(entry).__name__}"
    )


def _as_handoff(agent_name: str, entry: Any) -> HandoffLike:
    if isinstance(entry, Handoff | TransferAgents):
        return entry
    if isinstance(entry, Agent):
        return Handoff(entry)
    if _is_sdk_object(entry, "RealtimeAgent") or _is_sdk_object(entry, "Handoff"):
        from voicelab.agents.sdk import from_sdk_handoff

        return from_sdk_handoff(entry)
    if isinstance(entry, str):
        raise ConfigError(
            f"Agent {agent_name!r}: handoff target {entry!r} is a name; pass the Agent object itself "
            "(create both agents, then append to agent.handoffs for cycles)"
        )
    raise ConfigError(
        f"Agent {agent_name!r}: unknown handoff target {entry!r}; use an Agent, handoff(agent, ...) "
        "or TransferAgents([...])"
    )


def _as_guardrail(agent_name: str, entry: Any) -> OutputGuardrail:
    if isinstance(entry, OutputGuardrail):
        return entry
    if _is_sdk_object(entry, "OutputGuardrail"):
        from voicelab.agents.sdk import from_sdk_guardrail

        return from_sdk_guardrail(entry)
    if callable(entry):
        return OutputGuardrail(entry)
    raise ConfigError(
        f"Agent {agent_name!r}: output_guardrails must be @voicelab.output_guardrail functions, "
        f"got {type(entry).__name__}"
    )


def _is_sdk_object(entry: Any, class_name: str) -> bool:
    return any(
        klass.__name__ == class_name and klass.__module__.startswith("agents.")
        for klass in type(entry).__mro__
    )


__all__ = ["SESSION_SETTINGS", "UNSET", "Agent"]
