"""AgentRuntime: the session listener that runs an Agent's tools, stubs, approvals, guardrails and handoffs.

It reacts to the session's app events (`on_event(session, event)`):
- FunctionCall -> a background task: handoff, or arguments check -> approval -> stub or implementation ->
  `send_function_output(call_id, output, respond=True)` -> a ToolCall event. Unknown tools, bad arguments,
  failing tools and stubs give the model an error text and the app a ToolCall event with `error`.
- assistant TranscriptDelta -> guardrails every `debounce_text_length` characters and at the end of the item;
  a trip cancels the response, interrupts playback (truncating to what was played), emits GuardrailTripped
  and sends the follow-up message. At most one trip per response. A trip after the response finished only
  cuts playback (nothing is left to cancel; `GuardrailTripped.response_finished`). At most
  MAX_GUARDRAIL_FOLLOW_UPS follow-ups are sent in a row without a new user turn: a model whose answer to a
  follow-up trips the guardrail again would otherwise loop forever (`GuardrailTripped.note` says so).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voicelab.agents.approvals import Approvals, Decision
from voicelab.agents.events import AgentHandoff, GuardrailTripped, ToolApprovalRequired, ToolCall, ToolStart
from voicelab.agents.guardrails import TranscriptWatch
from voicelab.agents.handoffs import transfer_message
from voicelab.agents.stubs import StubError, Stubs
from voicelab.agents.tools import ToolArgumentsError, ToolContext
from voicelab.config import SessionConfig
from voicelab.errors import ConfigError
from voicelab.events import (
    AudioChunk,
    Disconnected,
    Error,
    FunctionCall,
    HistoryAdded,
    ResponseDone,
    ResponseStarted,
    SpeechStarted,
    TranscriptDelta,
    TranscriptDone,
)

if TYPE_CHECKING:
    from voicelab.agents.agent import Agent

logger = logging.getLogger(__name__)

MAX_GUARDRAIL_FOLLOW_UPS = 2  # follow-up messages in a row, without a user turn between them


def tool_error_output(name: str, message: str) -> str:
    """What the model reads when a tool call fails."""
    return f"An error occurred while running the tool {name}. Error: {message}"


class AgentRuntime:
    """Runs an Agent (and the agents it hands off to) on a session; made by `agent.create_listener()`."""

    def __init__(self, agent: Agent, *, stubs: Stubs | None = None, context: Any = None) -> None:
        self.starting_agent = agent
        self.agent = agent
        self.stubs = stubs if stubs is not None else agent.stubs if agent.stubs is not None else Stubs()
        self.context = context if context is not None else agent.context
        self.approvals = Approvals()
        self.watch = TranscriptWatch(agent.debounce_text_length)
        self.session: Any = None
        self.audio_started = False
        self.tool_calls: list[ToolCall] = []
        self._started = False
        self._t0 = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._task_names: dict[asyncio.Task[Any], str] = {}
        self._closed = False
        self._guardrail_lock = asyncio.Lock()
        self._active_response: str | None = None
        self._finished_responses: set[str] = set()
        self._follow_ups_in_row = 0
        self._sent_follow_ups: set[str] = set()

    def __repr__(self) -> str:
        return f"AgentRuntime(agent={self.agent.name!r}, stubs={self.stubs!r})"

    # -- public controls ----------------------------------------------------------------------------------
    def approve(self, call_id: str, *, always: bool = False) -> None:
        """Approve a pending call; `always=True` approves the tool for the rest of the session."""
        self.approvals.approve(call_id, always=always)

    def reject(self, call_id: str, message: str | None = None, *, always: bool = False) -> None:
        """Reject a pending call: the model gets `message` (default: the SDK's rejection text) as output."""
        self.approvals.reject(call_id, message, always=always)

    def pending_approvals(self) -> dict[str, str]:
        return self.approvals.pending()

    def now_ms(self) -> float:
        """The session clock in ms (the recording's t_ms) when the session has one, else ms since the
        runtime started. ToolCall.started_ms uses it."""
        clock = getattr(self.session, "now_ms", None)
        if callable(clock):
            return float(clock())
        return (time.monotonic() - self._t0) * 1000.0

    @property
    def running(self) -> int:
        """How many tool calls, handoffs and guardrail checks are in progress."""
        return len(self._tasks)

    async def wait_idle(self, timeout: float | None = 10.0) -> None:
        """Wait until every tool call and guardrail check started so far has finished; re-raise the first
        failure of one (it was also reported as an `agent_runtime_error` Error event)."""
        while self._tasks:
            tasks = list(self._tasks)
            results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
            for result in results:
                if isinstance(result, Exception):
                    raise result

    def attach(self, session: Any) -> None:
        """Bind to the session that created this runtime (before its first event), so that
        `update_agent()` and the clock work right after `connect()`."""
        self.session = session

    async def close(self) -> None:
        """Stop: cancel tool calls (manual stubs and approvals still waiting included) and guardrail checks.
        The session calls it through its `disconnected` event; events after that are ignored."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the listener -------------------------------------------------------------------------------------
    async def on_event(self, session: Any, event: Any) -> None:
        if self._closed:
            return
        if isinstance(event, Disconnected):
            await self.close()
            return
        self.session = session
        if not self._started:
            self._started = True
            if self.agent.has_async_instructions:
                self._spawn(self._apply_agent(session, self.agent), f"applying agent {self.agent.name!r}")
        if isinstance(event, FunctionCall):
            # the agent is taken now, as the SDK does: a handoff earlier in the same response must not change
            # which agent's tools answer this call
            self._spawn(
                self._on_function_call(session, event, self.agent),
                f"tool call {event.name} ({event.call_id})",
            )
        elif isinstance(event, AudioChunk):
            self.audio_started = True
        elif isinstance(event, ResponseStarted):
            self._active_response = event.response_id
        elif isinstance(event, ResponseDone):
            self._finished_responses.add(event.response_id)
            if self._active_response == event.response_id:
                self._active_response = None
        elif isinstance(event, SpeechStarted):
            self._follow_ups_in_row = 0  # the user speaks: a new turn
        elif isinstance(event, HistoryAdded):
            item = event.item
            if item.role == "user" and _user_text(item) not in self._sent_follow_ups:
                self._follow_ups_in_row = 0  # the user wrote: a new turn
        elif isinstance(event, TranscriptDelta) and event.role == "assistant":
            if not self.agent.output_guardrails or self.checks_before_speech:
                return
            response_id = self._response_of(session, event.item_id)
            if response_id in self.watch.tripped_responses:
                return
            text = self.watch.add(event.item_id, event.delta, response_id)
            if text is not None:
                self._spawn(
                    self._check_guardrails(session, event.item_id, text, self.agent), "output guardrail check"
                )
        elif isinstance(event, TranscriptDone) and event.role == "assistant":
            if not self.agent.output_guardrails or self.checks_before_speech:
                return
            if not self.watch.text(event.item_id) and event.transcript:
                self.watch.add(event.item_id, "", self._response_of(session, event.item_id))
                self.watch._items[event.item_id].text = event.transcript
            text = self.watch.finish(event.item_id)
            if text is not None:
                self._spawn(
                    self._check_guardrails(session, event.item_id, text, self.agent), "output guardrail check"
                )

    def _spawn(self, coro: Any, what: str) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        self._task_names[task] = what
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        what = self._task_names.pop(task, "agent runtime task")
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        logger.error("%s failed", what, exc_info=exc)
        session = self.session
        if self._closed or session is None or getattr(session, "closed", False):
            return  # the session is gone: nobody is left to tell
        message = (
            f"the agent runtime's {what} failed with {type(exc).__name__}: {exc}; "
            "the call got no answer. Check the session (reconnect if it closed) or the code named above."
        )
        try:
            session.emit(Error(message=message, code="agent_runtime_error"))
        except Exception:  # the session cannot take events any more
            logger.debug("could not report %s", what, exc_info=True)

    def _response_of(self, session: Any, item_id: str) -> str | None:
        conversation = getattr(session, "conversation", None)
        item = (
            conversation.get(item_id) if conversation is not None and hasattr(conversation, "get") else None
        )
        response_id = getattr(item, "response_id", None)
        return response_id or self._active_response

    # -- session helpers ----------------------------------------------------------------------------------
    async def _emit(self, session: Any, event: Any) -> None:
        result = session.emit(event)
        if inspect.isawaitable(result):
            await result

    def _history(self, session: Any) -> tuple[Any, ...]:
        """A copy of the conversation items, so a tool may keep it while the session goes on."""
        history = getattr(session, "history", ())
        if callable(history):
            history = history()
        return tuple(copy.deepcopy(list(history or ())))

    async def _agent_config(self, session: Any, agent: Agent) -> SessionConfig:
        """The session configuration after switching to `agent`: its instructions, tools (with its handoffs)
        and the settings it sets; what it leaves unset (voice, turn detection, model...) stays as the session
        has it, as in the Agents SDK where those live in the run's model settings."""
        instructions = await agent.resolve_instructions(self.context)
        current = getattr(session, "config", None)
        if isinstance(current, SessionConfig):
            return current.replace(**agent.session_settings(instructions))
        return SessionConfig(**agent.session_settings(instructions))

    async def _apply_agent(self, session: Any, agent: Agent) -> None:
        await session.update(await self._agent_config(session, agent))

    # -- tools --------------------------------------------------------------------------------------------
    async def _on_function_call(self, session: Any, call: FunctionCall, agent: Agent) -> None:
        started = self.now_ms()
        # every call the runtime answers starts with ToolStart and ends with ToolCall, handoffs included
        await self._emit(session, ToolStart(call.call_id, call.name, call.arguments, agent.name))
        handoff = agent.handoff_tools.get(call.name)
        if handoff is not None:
            await self._handoff(session, call, handoff, started, agent)
            return
        tool = agent.function_tools.get(call.name)
        stub_kind = self.stubs.kind(call.name)
        approval: str | None = None
        error: str | None = None
        output: str
        try:
            if tool is None and stub_kind is None:
                known = ", ".join([*agent.function_tools, *agent.handoff_tools]) or "none"
                raise _CallFailed(
                    f"Tool {call.name} not found",
                    f"unknown tool {call.name!r} (agent {agent.name!r} has: {known})",
                )
            arguments = self._parse_arguments(tool, call)
            if tool is not None and tool.needs_approval:
                decision = await self._approval(session, call)
                approval = decision.status
                if not decision.approved:
                    output = decision.message or ""
                    raise _Rejected(output)
            if stub_kind is not None:
                try:
                    output = await self.stubs.resolve(call.call_id, call.name, arguments)
                except StubError as exc:
                    raise _CallFailed(tool_error_output(call.name, str(exc)), str(exc)) from None
            elif tool is not None and tool.implemented:
                context = ToolContext(self._history(session), agent, call.call_id, call.name, self.context)
                output = await tool.invoke(context, arguments)
            else:
                message = (
                    f"tool {call.name!r} has no implementation and no stub; "
                    f"set one with stubs.fixed({call.name!r}, ...)"
                )
                raise _CallFailed(tool_error_output(call.name, message), message)
        except _Rejected as rejected:
            output = rejected.output
        except _CallFailed as failed:
            output, error = failed.output, failed.message
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the tool itself raised
            error = f"{type(exc).__name__}: {exc}"
            output = tool_error_output(call.name, error)
        await session.send_function_output(call.call_id, output, respond=True)
        await self._record_call(
            session, call, output, started, error, agent.name, stub_kind=stub_kind, approval=approval
        )
        if error is not None:
            await self._emit(
                session, Error(message=f"tool call {call.name} failed: {error}", code="tool_error")
            )

    async def _record_call(
        self,
        session: Any,
        call: FunctionCall,
        output: str,
        started: float,
        error: str | None,
        agent_name: str,
        **details: Any,
    ) -> None:
        """Keep and emit the `tool_call` event of an answered call (duration up to now)."""
        record = ToolCall(
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
            output=output,
            started_ms=round(started, 3),
            duration_ms=round(self.now_ms() - started, 3),
            error=error,
            agent=agent_name,
            **details,
        )
        self.tool_calls.append(record)
        await self._emit(session, record)

    def _parse_arguments(self, tool: Any, call: FunctionCall) -> dict[str, Any]:
        try:
            if tool is not None:
                return tool.parse_arguments(call.arguments)
            decoded = json.loads(call.arguments) if call.arguments.strip() else {}
            if not isinstance(decoded, dict):
                raise ToolArgumentsError(f"arguments for {call.name} must be a JSON object")
            return decoded
        except json.JSONDecodeError as exc:
            message = f"arguments for {call.name} are not valid JSON ({exc.msg})"
        except ToolArgumentsError as exc:
            message = str(exc)
        raise _CallFailed(
            f"Invalid arguments: {message}. Call the tool again with arguments that fit its schema.", message
        )

    async def _approval(self, session: Any, call: FunctionCall) -> Decision:
        standing = self.approvals.standing(call.name)
        if standing is not None:
            return standing
        future = self.approvals.register(call.call_id, call.name)
        await self._emit(session, ToolApprovalRequired(call.call_id, call.name, call.arguments, runtime=self))
        try:
            return await future
        finally:
            self.approvals.discard(call.call_id)

    # -- handoffs -----------------------------------------------------------------------------------------
    async def _handoff(
        self, session: Any, call: FunctionCall, handoff: Any, started: float, source: Agent
    ) -> None:
        error: str | None = None
        try:
            arguments = handoff.parse_arguments(call.arguments)
            target = await handoff.resolve(self.context, arguments)
            self.check_voice_change(source, target)
            config = await self._agent_config(session, target)
        except (ToolArgumentsError, ConfigError) as exc:
            error = str(exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            output = tool_error_output(call.name, error)
            await session.send_function_output(call.call_id, output, respond=True)
            await self._emit(
                session, Error(message=f"handoff {call.name} failed: {error}", code="handoff_error")
            )
        else:
            self.agent = target
            await self._emit(session, AgentHandoff(source.name, target.name, call.call_id, call.arguments))
            await session.update(config)
            output = transfer_message(target.name)
            await session.send_function_output(call.call_id, output, respond=True)
        await self._record_call(session, call, output, started, error, source.name)

    def check_voice_change(self, source: Agent, target: Agent) -> None:
        """Raise ConfigError when a handoff would change the voice after the session produced audio."""
        from voicelab.agents.agent import UNSET

        config = getattr(self.session, "config", None)
        in_force = config.voice if isinstance(config, SessionConfig) else source.voice
        if not self.audio_started or target.voice is UNSET or target.voice == in_force:
            return
        current = in_force if in_force is not UNSET else "the session default"
        raise ConfigError(
            f"handoff {source.name!r} -> {target.name!r} would change the voice from {current} to "
            f"{target.voice!r} after the session produced audio; the Realtime API cannot change voice then. "
            f"Give {target.name!r} the same voice (or leave its voice unset)"
        )

    async def update_agent(self, agent: Agent) -> None:
        """Switch to another agent without a tool call (session.update with its configuration)."""
        if self.session is None:
            raise ConfigError("the runtime is not attached to a session yet; connect first")
        self.check_voice_change(self.agent, agent)
        source, self.agent = self.agent, agent
        await self._emit(self.session, AgentHandoff(source.name, agent.name))
        await self._apply_agent(self.session, agent)

    # -- guardrails ---------------------------------------------------------------------------------------
    checks_before_speech = False  # a chained session checks each sentence itself, before it is spoken

    async def check_output(self, session: Any, item_id: str, response_id: str, text: str) -> bool:
        """Run the output guardrails on `text` (the answer so far) before it is spoken; False when one
        tripped: the trip is handled as in a Realtime session (interrupt, `guardrail_tripped`, follow-up)."""
        if not self.agent.output_guardrails or self._closed:
            return True
        self.watch.add(item_id, "", response_id)
        self.watch._items[item_id].text = text
        self.watch._items[item_id].checked_length = len(text)
        await self._check_guardrails(session, item_id, text, self.agent)
        return response_id not in self.watch.tripped_responses

    async def _check_guardrails(self, session: Any, item_id: str, text: str, agent: Agent) -> None:
        async with self._guardrail_lock:
            response_id = self.watch.response_of(item_id) or item_id
            if response_id in self.watch.tripped_responses:
                return
            tripped: list[tuple[str, Any]] = []
            for guardrail in agent.output_guardrails:
                try:
                    result = await guardrail.run(self.context, agent, text)
                except Exception as exc:
                    await self._emit(
                        session,
                        Error(
                            message=f"output guardrail {guardrail.name!r} raised "
                            f"{type(exc).__name__}: {exc}; "
                            "it was skipped",
                            code="guardrail_error",
                        ),
                    )
                    continue
                if result.tripwire_triggered:
                    tripped.append((guardrail.name, result.info))
            if not tripped or response_id in self.watch.tripped_responses:
                return
            self.watch.tripped_responses.add(response_id)
            await self._cut(session, response_id, item_id, text, tripped, agent)

    async def _cut(
        self,
        session: Any,
        response_id: str,
        item_id: str,
        text: str,
        tripped: list[tuple[str, Any]],
        agent: Agent,
    ) -> None:
        names = [name for name, _ in tripped]
        active = self._active_response
        finished = self._response_finished(session, response_id)
        note: str | None = None
        if active is not None and active != response_id and self.watch.response_of(item_id) is not None:
            # The tripped response ended and a newer one is streaming (a slow guardrail): cancelling now would
            # cut the newer response, and the model already moved on, so (as the SDK) no cancel, no follow-up.
            played_ms = _played_ms(session, item_id)
            follow_up = None
        else:
            cut_playback = getattr(session, "cut_playback", None)
            if finished and callable(cut_playback):
                # the whole reply had arrived: nothing to cancel (a cancel would be refused), but what is
                # still playing stops and is truncated to what was heard
                played = await cut_playback()
            else:
                # interrupt(): audio_interrupted + truncate to what was played, and response.cancel when one
                # is active
                played = await session.interrupt()
            played_ms = float(played) if isinstance(played, int | float) else _played_ms(session, item_id)
            follow_up = self._follow_up(names, agent)
            if follow_up and self._follow_ups_in_row >= MAX_GUARDRAIL_FOLLOW_UPS:
                note = (
                    f"follow-up not sent: {self._follow_ups_in_row} follow-ups in a row already tripped "
                    f"{', '.join(names)} again (the cap is MAX_GUARDRAIL_FOLLOW_UPS="
                    f"{MAX_GUARDRAIL_FOLLOW_UPS}); the next user turn resets it."
                )
                follow_up = None
        await self._emit(
            session,
            GuardrailTripped(
                guardrail=", ".join(names),
                item_id=item_id,
                text=text,
                played_ms=played_ms,
                follow_up=follow_up,
                response_id=response_id,
                info=tripped[0][1] if len(tripped) == 1 else [info for _, info in tripped],
                response_finished=finished,
                note=note,
            ),
        )
        if follow_up:
            self._follow_ups_in_row += 1
            self._sent_follow_ups.add(follow_up)
            await session.send_text(follow_up, respond=True)

    def _response_finished(self, session: Any, response_id: str) -> bool:
        """Whether the response had ended before the trip (its response.done was received)."""
        if response_id in self._finished_responses:
            return True
        conversation = getattr(session, "conversation", None)
        responses = getattr(conversation, "responses", None)
        response = responses.get(response_id) if isinstance(responses, dict) else None
        return response is not None and getattr(response, "status", "in_progress") != "in_progress"

    def _follow_up(self, names: list[str], agent: Agent) -> str | None:
        follow_up: str | Callable[[list[str]], str] | None = agent.guardrail_follow_up
        if follow_up is None or isinstance(follow_up, str):
            return follow_up
        return follow_up(names)


def _user_text(item: Any) -> str:
    parts = getattr(item, "content", None) or []
    return " ".join(
        str(p.get("text") or "") for p in parts if isinstance(p, dict) and p.get("type") == "input_text"
    )


def _played_ms(session: Any, item_id: str) -> float | None:
    conversation = getattr(session, "conversation", None)
    item = conversation.get(item_id) if conversation is not None and hasattr(conversation, "get") else None
    truncated = getattr(item, "truncated_ms", None)
    return float(truncated) if truncated is not None else None


class _CallFailed(Exception):
    def __init__(self, output: str, message: str) -> None:
        super().__init__(message)
        self.output = output
        self.message = message


class _Rejected(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


__all__ = ["AgentRuntime", "tool_error_output"]
