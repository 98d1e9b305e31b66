"""Scripts for the embedded server's ScriptedBrain: load, validate, match.

A script is a JSON or YAML file (or a dict) of this shape::

    rules:                        # tried in order; the first that applies answers
      - match: "order number is (?P<order_number>[a-z0-9 ]+)"   # regex, case-insensitive, searched in the
                                                              # latest user text or transcript
        examples: ["The order number is four five six seven."]  # what a caller says: feeds the offline
                                                              # transcription grammar (exact on these)
        instructions: "returns desk"   # optional regex: the rule applies only while the session
                                       # instructions match it (per-agent rules after a handoff)
        call:                          # optional: answer with this function call ...
          name: lookup_order           # ... only if the session declares that tool
          arguments: {order_number: "{order_number}"}   # strings may use the regex's named groups
        say: "Order {order_number}: {output}"           # spoken/sent text; named groups, and for a `call`
                                                        # rule {output} (the tool output) or {output.field}
                                                        # (a field of a JSON output) once it has arrived
    fallback: "Sorry, I have no scripted reply for that."   # when no rule applies
    idle: "Are you still there?"   # optional: what to say when idle_timeout_ms fires (default: fallback)
    description: "free text"       # optional

A rule has `say`, `call` or both. With `call` alone the follow-up after the function output says the output;
for a handoff (a tool named `transfer_to_...`) without `say`, the rules are tried again on the caller's last
words under the new agent's instructions.
Literal braces are written `{{` and `}}`. Every problem is reported at load with the file, the line
and the fix.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voicelab.errors import ScriptError

DEFAULT_FALLBACK = "Sorry, I have no scripted reply for that."
# A rule's regex runs on the server's event loop: it sees at most the first MAX_MATCH_CHARS of the user
# text (a backtracking pattern like `yes.*correct` over 16 KB took a second) and the first
# MAX_INSTRUCTIONS_MATCH_CHARS of the session instructions.
MAX_MATCH_CHARS = 2000
MAX_INSTRUCTIONS_MATCH_CHARS = 4000
_TOP_KEYS = {"rules", "fallback", "idle", "description"}
_RULE_KEYS = {"match", "examples", "instructions", "call", "say"}
_CALL_KEYS = {"name", "arguments"}


@dataclass(frozen=True)
class Rule:
    """One scripted rule; see the module docstring for the meaning of each field."""

    match: re.Pattern[str]
    say: str | None = None
    call_name: str | None = None
    call_arguments: Mapping[str, Any] = field(default_factory=dict)
    examples: tuple[str, ...] = ()
    instructions: re.Pattern[str] | None = None
    line: int | None = None


@dataclass(frozen=True)
class Script:
    rules: tuple[Rule, ...]
    fallback: str = DEFAULT_FALLBACK
    idle: str | None = None
    source: str = "<script>"

    @property
    def phrases(self) -> list[str]:
        """Every example phrase, in rule order, without duplicates."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            for phrase in rule.examples:
                seen.setdefault(phrase, None)
        return list(seen)


def placeholders(template: str) -> list[str]:
    """The `{name}` / `{output.field}` placeholders of a template (doubled braces are literal)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _lookup(output: str, path: list[str]) -> str:
    try:
        value: Any = json.loads(output)
    except ValueError:
        return ""
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return ""
    return value if isinstance(value, str) else json.dumps(value)


def fill(template: str, groups: Mapping[str, str | None], output: str | None = None) -> str:
    """Fill a template: named groups, {output}, {output.field}; missing values become ''."""
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is None:
            continue
        head, *rest = name.split(".")
        if head == "output":
            text = output or ""
            parts.append(_lookup(text, rest) if rest else text)
        else:
            parts.append(groups.get(head) or "")
    return "".join(parts)


def fill_arguments(value: Any, groups: Mapping[str, str | None]) -> Any:
    if isinstance(value, str):
        return fill(value, groups)
    if isinstance(value, dict):
        return {key: fill_arguments(inner, groups) for key, inner in value.items()}
    if isinstance(value, list):
        return [fill_arguments(inner, groups) for inner in value]
    return value


# --- loading ------------------------------------------------------------------------------------------


class _Located:
    """Line numbers of the rules, read from the YAML node tree (JSON is read the same way)."""

    def __init__(self, text: str) -> None:
        self.rule_lines: list[int] = []
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                    self.rule_lines = [item.start_mark.line + 1 for item in value.value]


def _parse_text(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScriptError(
                f"{source}, line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}. Fix "
                "the JSON syntax there."
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScriptError(f"{source}{where}: invalid YAML: {problem}. Fix the YAML syntax there.") from None


def load_script(source: str | Path | Mapping[str, Any]) -> Script:
    """Load and validate a script from a path (.json, .yaml, .yml) or an already parsed dict."""
    lines: list[int] = []
    if isinstance(source, Mapping):
        data: Any = dict(source)
        name = "<script>"
    else:
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{name}: cannot read the script ({exc.strerror}). Check the path.") from None
        data = _parse_text(text, name)
        lines = _Located(text).rule_lines
    return _build(data, name, lines)


def _where(name: str, index: int, lines: list[int]) -> str:
    line = f", line {lines[index]}" if index < len(lines) else ""
    return f"{name}{line}: rule {index + 1}"


def _compile(pattern: Any, what: str, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ScriptError(
            f"{where}: '{what}' must be a non-empty regex string. Write e.g. {what}: \"order number\"."
        )
    try:
        return re.compile(pattern, re.IGNORECASE | re.DOTALL)
    except re.error as exc:
        raise ScriptError(
            f"{where}: bad regex in '{what}' {pattern!r}: {exc}. Fix the regular expression."
        ) from None


def _check_placeholders(template: str, groups: set[str], allow_output: bool, where: str, what: str) -> None:
    try:
        names = placeholders(template)
    except ValueError as exc:
        raise ScriptError(
            f"{where}: bad placeholder in '{what}' {template!r}: {exc}. Write literal braces as {{{{ }}}}."
        ) from None
    for placeholder in names:
        head = placeholder.split(".")[0]
        if head == "output" and allow_output:
            continue
        if head not in groups:
            hint = (
                " {output} is only available in the 'say' of a rule with a 'call'."
                if head == "output"
                else f" Add a named group (?P<{head}>...) to 'match' or remove the placeholder."
            )
            raise ScriptError(
                f"{where}: placeholder {{{placeholder}}} in '{what}' is not a named group of the regex.{hint}"
            )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for inner in value.values() for text in _strings(inner)]
    if isinstance(value, list):
        return [text for inner in value for text in _strings(inner)]
    return []


def _build_rule(raw: Any, where: str, line: int | None) -> Rule:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a rule must be a mapping with 'match' and 'say' and/or 'call'.")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ScriptError(
            f"{where}: unknown key {unknown[0]!r}. Allowed keys: {', '.join(sorted(_RULE_KEYS))}."
        )
    if "say" not in raw and "call" not in raw:
        raise ScriptError(
            f"{where}: the rule has neither 'say' nor 'call'. Add what the assistant says or calls."
        )
    match = _compile(raw.get("match"), "match", where)
    instructions = _compile(raw["instructions"], "instructions", where) if "instructions" in raw else None
    groups = set(match.groupindex)
    examples = raw.get("examples", [])
    if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
        raise ScriptError(f"{where}: 'examples' must be a list of strings (phrases a caller says).")
    call_name: str | None = None
    arguments: dict[str, Any] = {}
    if "call" in raw:
        call = raw["call"]
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise ScriptError(
                f"{where}: 'call' must be a mapping with a tool 'name' and optional 'arguments'."
            )
        extra = sorted(set(call) - _CALL_KEYS)
        if extra:
            raise ScriptError(f"{where}: unknown key {extra[0]!r} in 'call'. Allowed keys: arguments, name.")
        arguments = call.get("arguments", {}) or {}
        if not isinstance(arguments, dict):
            raise ScriptError(f"{where}: 'call.arguments' must be a mapping of argument names to values.")
        for text in _strings(arguments):
            _check_placeholders(text, groups, False, where, "call.arguments")
        call_name = call["name"]
    say = raw.get("say")
    if say is not None:
        if not isinstance(say, str) or not say.strip():
            raise ScriptError(f"{where}: 'say' must be non-empty text.")
        _check_placeholders(say, groups, call_name is not None, where, "say")
    return Rule(match, say, call_name, arguments, tuple(examples), instructions, line)


def _build(data: Any, name: str, lines: list[int]) -> Script:
    if not isinstance(data, dict):
        raise ScriptError(
            f"{name}: a script must be a mapping with a 'rules' list (and optional 'fallback')."
        )
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ScriptError(
            f"{name}: unknown top-level key {unknown[0]!r}. Allowed keys: {', '.join(sorted(_TOP_KEYS))}."
        )
    rules_raw = data.get("rules")
    if not isinstance(rules_raw, list):
        raise ScriptError(f"{name}: 'rules' is missing or not a list. Add rules: [{{match: ..., say: ...}}].")
    rules = tuple(
        _build_rule(raw, _where(name, index, lines), lines[index] if index < len(lines) else None)
        for index, raw in enumerate(rules_raw)
    )
    fallback = data.get("fallback", DEFAULT_FALLBACK)
    idle = data.get("idle")
    for key, value in (("fallback", fallback), ("idle", idle)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ScriptError(f"{name}: '{key}' must be non-empty text.")
        if value is not None and placeholders(value):
            raise ScriptError(
                f"{name}: '{key}' cannot use placeholders; there is no regex match to fill them from."
            )
    return Script(rules, fallback, idle, name)
