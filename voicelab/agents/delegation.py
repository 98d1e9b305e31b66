"""Delegation through a tool (the supervisor pattern): the realtime agent passes the request and the
conversation so far to another, text, model and speaks its answer.

`delegate_tool(responder)` builds the tool. Responders: `OpenAIResponder` (Chat Completions; needs a key or a
client) and `ScriptedResponder` (offline regex rules, like the embedded server's scripts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from voicelab.agents.tools import FunctionTool, ToolContext, function_tool
from voicelab.checks import text, whole
from voicelab.errors import ConfigError

DEFAULT_SUPERVISOR_INSTRUCTIONS = (
    "You are the supervisor of a junior voice agent. You get the conversation so far and the agent's "
    "request. "
    "Answer with what the agent should say next to the user: short, spoken-style, no markdown."
)


class Responder(Protocol):
    async def respond(self, request: str, history: Sequence[Any]) -> str: ...


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


def item_text(item: Any) -> str:
    """The words of a history item: transcript, text, or the text parts of its content."""
    for key in ("input_transcript", "transcript", "text"):
        value = _get(item, key)
        if value:
            return str(value)
    parts = []
    for part in _get(item, "content", None) or []:
        for key in ("text", "transcript"):
            value = _get(part, key)
            if value:
                parts.append(str(value))
                break
    return " ".join(parts)


def history_to_messages(history: Sequence[Any]) -> list[dict[str, str]]:
    """Chat messages from realtime history items (messages; tool calls and outputs as short notes)."""
    messages: list[dict[str, str]] = []
    for item in history:
        kind = _get(item, "type", "message")
        if kind == "message":
            role = _get(item, "role") or "user"
            text = item_text(item)
            if text:
                messages.append(
                    {
                        "role": "assistant"
                        if role == "assistant"
                        else "user"
                        if role == "user"
                        else "system",
                        "content": text,
                    }
                )
        elif kind == "function_call":
            messages.append(
                {
                    "role": "assistant",
                    "content": f"[called {_get(item, 'name')}({_get(item, 'arguments') or ''})]",
                }
            )
        elif kind == "function_call_output":
            messages.append({"role": "user", "content": f"[tool output: {_get(item, 'output')}]"})
    return messages


@dataclass(repr=False)
class OpenAIResponder:
    """Ask a text model through the Chat Completions API (any `openai.AsyncOpenAI`-compatible client)."""

    model: str = "gpt-4.1-mini"
    instructions: str = DEFAULT_SUPERVISOR_INSTRUCTIONS
    client: Any = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    max_history: int = 40

    def __post_init__(self) -> None:
        text(self.model, "model", example="gpt-4.1-mini", where="OpenAIResponder")
        text(self.instructions, "instructions", where="OpenAIResponder")
        text(self.base_url, "base_url", none=True, where="OpenAIResponder")
        whole(
            self.max_history,
            "max_history",
            lo=1,
            hi=10_000,
            unit="messages",
            example=40,
            where="OpenAIResponder",
        )

    def __repr__(self) -> str:
        from voicelab.redact import redact_url

        key = "<set>" if self.api_key else "<not set>"
        client = "<given>" if self.client is not None else None
        return (
            f"OpenAIResponder(model={self.model!r}, base_url={redact_url(self.base_url)!r}, api_key={key}, "
            f"client={client}, max_history={self.max_history})"
        )

    def build_messages(self, request: str, history: Sequence[Any]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.instructions}]
        messages.extend(history_to_messages(history)[-self.max_history :])
        messages.append({"role": "user", "content": f"Request from the voice agent: {request}"})
        return messages

    def _client(self) -> Any:
        if self.client is None:
            from openai import AsyncOpenAI

            try:
                self.client = AsyncOpenAI(api_key=self.api_key, base_url=self.base_url)
            except Exception as exc:  # openai.OpenAIError when no key is configured
                raise ConfigError(
                    f"OpenAIResponder cannot create an OpenAI client ({type(exc).__name__}); "
                    "set OPENAI_API_KEY, "
                    "pass api_key=, or use ScriptedResponder offline"
                ) from None
        return self.client

    async def respond(self, request: str, history: Sequence[Any]) -> str:
        completion = await self._client().chat.completions.create(
            model=self.model, messages=self.build_messages(request, history)
        )
        return completion.choices[0].message.content or ""


@dataclass
class ScriptedResponder:
    """Offline answers: the first rule whose `match` regex finds the request (or, with `on: history`, the last
    user words) gives `say`, formatted with the regex's named groups and {request}."""

    rules: Sequence[Mapping[str, Any]]
    default: str = "I don't know; please check with a human colleague."
    _compiled: list[tuple[re.Pattern[str], str, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.rules, Mapping):
            raise ConfigError(
                "ScriptedResponder rules must be a list of rules; wrap the one you have in [...]"
            )
        if not isinstance(self.rules, Sequence) or isinstance(self.rules, str):
            raise ConfigError(
                f"ScriptedResponder rules must be a list of {{'match': regex, 'say': text}} dicts, got "
                f"{type(self.rules).__name__}"
            )
        for index, rule in enumerate(self.rules):
            if not isinstance(rule, Mapping):
                raise ConfigError(
                    f"delegation rule {index} must be a dict {{'match': regex, 'say': text}}, got "
                    f"{type(rule).__name__}"
                )
            if "match" not in rule or "say" not in rule:
                raise ConfigError(
                    f"delegation rule {index} needs 'match' (a regex) and 'say'; got {sorted(rule)}"
                )
            try:
                pattern = re.compile(rule["match"], re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(f"delegation rule {index}: bad regex {rule['match']!r} ({exc})") from None
            self._compiled.append((pattern, str(rule["say"]), str(rule.get("on", "request"))))

    async def respond(self, request: str, history: Sequence[Any]) -> str:
        last_user = next(
            (m["content"] for m in reversed(history_to_messages(history)) if m["role"] == "user"), ""
        )
        for pattern, say, on in self._compiled:
            found = pattern.search(last_user if on == "history" else request)
            if found:
                return say.format(request=request, **found.groupdict())
        return self.default


def delegate_tool(
    responder: Responder,
    *,
    name: str = "ask_supervisor",
    description: str = "Ask a more capable supervisor model what to say when the request needs knowledge, "
    "policy or judgement you do not have. Say a short filler phrase to the user first.",
    needs_approval: bool = False,
) -> FunctionTool:
    """A tool that forwards `request` and the history snapshot to `responder` and returns its answer."""
    if not hasattr(responder, "respond"):
        raise ConfigError("delegate_tool needs a responder with `async respond(request, history)`")

    async def delegate(ctx: ToolContext, request: str) -> str:
        """Delegate to the supervisor.

        Args:
            request: What the user needs, in one or two sentences, with the relevant details.
        """
        return await responder.respond(request, list(ctx.history))

    return function_tool(delegate, name=name, description=description, needs_approval=needs_approval)


__all__ = [
    "DEFAULT_SUPERVISOR_INSTRUCTIONS",
    "OpenAIResponder",
    "Responder",
    "ScriptedResponder",
    "delegate_tool",
    "history_to_messages",
    "item_text",
]
