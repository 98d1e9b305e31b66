"""The prompt builder: a voice agent's instructions as named sections, rendered to Markdown and read back.

The layout joins the realtime prompting guide's skeleton (Role and Objective, Personality and Tone, Context,
Reference Pronunciations, Tools, Instructions/Rules, Conversation Flow, Safety and Escalation) with the voice
agents guide's Personality and Tone fields (Identity, Task, Demeanor, Tone, Level of Enthusiasm, Level of
Formality, Level of Emotion, Filler Words, Pacing, Other details) and its Conversation States (JSON: id,
description, instructions, examples, transitions).

    p = Prompt(role="You are the returns desk of an online shop.", tone="Warm and brief.")
    agent = base.clone(instructions=p.render())
    Prompt.parse(p.render()) == p                      # exact on its own output
    p.validate(agent)                                   # findings: state graph, tools, repeat-back rule
    print(p.diff(p.replace(tone="Crisp.")))

`Prompt.parse` also reads hand-written prompts: `#`/`##` headings are matched by name (case, "&" for
"and", "Rules" for "Instructions" do not matter); text before the first heading is the role; unknown
sections are kept in `extra` and rendered after the known ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voicelab.checks import checked, checked_class
from voicelab.errors import ConfigError

__all__ = ["Finding", "Prompt", "State", "Transition", "diff"]

# (field, heading) of the top-level sections, in render order; "personality" and "states" are special
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("role", "Role and Objective"),
    ("personality", "Personality and Tone"),
    ("context", "Context"),
    ("pronunciations", "Reference Pronunciations"),
    ("tools", "Tools"),
    ("instructions", "Instructions"),
    ("flow", "Conversation Flow"),
    ("states", "Conversation States"),
    ("safety", "Safety and Escalation"),
)
_PERSONALITY: tuple[tuple[str, str], ...] = (
    ("identity", "Identity"),
    ("task", "Task"),
    ("demeanor", "Demeanor"),
    ("tone", "Tone"),
    ("enthusiasm", "Level of Enthusiasm"),
    ("formality", "Level of Formality"),
    ("emotion", "Level of Emotion"),
    ("filler_words", "Filler Words"),
    ("pacing", "Pacing"),
    ("other_details", "Other details"),
)
_TEXT_FIELDS = tuple(name for name, _ in _SECTIONS if name not in ("personality", "states")) + tuple(
    name for name, _ in _PERSONALITY
)
_ALIASES = {
    "role": "role",
    "role and objective": "role",
    "objective": "role",
    "personality and tone": "personality",
    "personality": "personality",
    "context": "context",
    "reference pronunciations": "pronunciations",
    "pronunciations": "pronunciations",
    "pronunciation": "pronunciations",
    "tools": "tools",
    "tool use": "tools",
    "instructions": "instructions",
    "instructions/rules": "instructions",
    "instructions / rules": "instructions",
    "rules": "instructions",
    "instructions and rules": "instructions",
    "conversation flow": "flow",
    "conversation states": "states",
    "states": "states",
    "safety and escalation": "safety",
    "safety": "safety",
    "escalation": "safety",
}
_PERSONALITY_ALIASES = {heading.lower(): name for name, heading in _PERSONALITY} | {
    "enthusiasm": "enthusiasm",
    "formality": "formality",
    "emotion": "emotion",
    "other": "other_details",
    "other details": "other_details",
}
_PERSONALITY_FIELDS = {name for name, _ in _PERSONALITY}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Transition:
    """A move to another conversation state: `next_step` (a state id) once `condition` holds."""

    next_step: str
    condition: str = ""

    def to_json(self) -> dict[str, str]:
        return {"next_step": self.next_step, "condition": self.condition}


@checked_class
@dataclass(frozen=True)
class State:
    """A conversation state as in the voice agents guide (its JSON keys are the field names)."""

    id: str
    description: str = ""
    instructions: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    transitions: tuple[Transition, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ConfigError(f"a conversation state needs a non-empty text id, got {self.id!r}")
        if not isinstance(self.description, str):
            raise ConfigError(
                f"state {self.id!r}: description must be text, got {type(self.description).__name__}"
            )
        object.__setattr__(self, "instructions", _texts(self.instructions, f"state {self.id!r} instructions"))
        object.__setattr__(self, "examples", _texts(self.examples, f"state {self.id!r} examples"))
        moves = []
        for entry in _as_list(self.transitions, f"state {self.id!r} transitions"):
            if isinstance(entry, Transition):
                moves.append(entry)
            elif isinstance(entry, str):
                moves.append(Transition(entry))
            elif isinstance(entry, Mapping) and isinstance(entry.get("next_step"), str):
                condition = entry.get("condition", "")
                if not isinstance(condition, str):
                    raise ConfigError(f"state {self.id!r}: a transition's condition must be text")
                moves.append(Transition(entry["next_step"], condition))
            else:
                raise ConfigError(
                    f"state {self.id!r}: a transition must be {{'next_step': <state id>, 'condition': "
                    f"<text>}} or a state id, got {entry!r}"
                )
        object.__setattr__(self, "transitions", tuple(moves))

    @classmethod
    def from_json(cls, data: Any) -> State:
        if isinstance(data, State):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"a conversation state must be an object with id, description, instructions, examples and "
                f"transitions, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {"id", "description", "instructions", "examples", "transitions"})
        if unknown:
            raise ConfigError(
                f"conversation state {data.get('id')!r} has unknown keys {unknown}; use id, description, "
                "instructions, examples, transitions"
            )
        return cls(
            id=data.get("id"),  # type: ignore[arg-type]
            description=data.get("description", ""),
            instructions=data.get("instructions", ()),
            examples=data.get("examples", ()),
            transitions=data.get("transitions", ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "instructions": list(self.instructions),
            "examples": list(self.examples),
            "transitions": [t.to_json() for t in self.transitions],
        }


@dataclass(frozen=True)
class Finding:
    """One validation finding: `code` (stable, for code), `message` (names the problem and the fix)."""

    code: str
    message: str
    severity: str = "warning"  # "error": the prompt contradicts itself; "warning": probably a mistake

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


@checked_class
@dataclass(frozen=True)
class Prompt:
    """A voice agent prompt in named sections; empty sections are not rendered. Every section is text
    except `states` (a sequence of `State` or dicts in the guide's JSON shape) and `extra` (title, text)
    pairs. A state graph that does not hold (duplicate ids, transitions to missing states) is refused."""

    role: str = ""
    identity: str = ""
    task: str = ""
    demeanor: str = ""
    tone: str = ""
    enthusiasm: str = ""
    formality: str = ""
    emotion: str = ""
    filler_words: str = ""
    pacing: str = ""
    other_details: str = ""
    context: str = ""
    pronunciations: str = ""
    tools: str = ""
    instructions: str = ""
    flow: str = ""
    states: tuple[State, ...] = ()
    safety: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                value = "\n".join(f"- {v.strip()}" for v in value)  # a list of rules becomes bullets
            if not isinstance(value, str):
                raise ConfigError(
                    f"prompt section {name!r} must be text, got {type(value).__name__}; pass a string "
                    "(or a list of strings for bullet points)"
                )
            value = _clean(value)
            depth = 2 if name in _PERSONALITY_FIELDS else 1
            if _has_heading(value, depth):
                raise ConfigError(
                    f"prompt section {name!r} contains a Markdown heading of level {depth} or above, which "
                    f"would start a new section; use deeper headings ({'#' * (depth + 1)} ...) or plain text"
                )
            object.__setattr__(self, name, value)
        states = tuple(State.from_json(s) for s in _as_list(self.states, "states"))
        object.__setattr__(self, "states", states)
        extra = []
        for entry in _as_list(self.extra, "extra"):
            if (
                not isinstance(entry, list | tuple)
                or len(entry) != 2
                or not all(isinstance(v, str) for v in entry)
            ):
                raise ConfigError(f"prompt extra sections must be (title, text) pairs of text, got {entry!r}")
            title = entry[0].strip()
            if not title or _ALIASES.get(_norm(title)) or _has_heading(entry[1], 1):
                raise ConfigError(
                    f"prompt extra section {title!r} needs a title that is not a known section (set that "
                    "field instead) and text without level-1 headings"
                )
            extra.append((title, _clean(entry[1])))
        object.__setattr__(self, "extra", tuple(extra))
        if not _TOLERANT:
            errors = [f for f in self._graph_findings() if f.severity == "error"]
            if errors:
                raise ConfigError(f"the conversation states do not hold: {errors[0].message}")

    # -- Markdown -----------------------------------------------------------------------------------------
    def render(self) -> str:
        """The Markdown an agent uses as its instructions."""
        blocks: list[str] = []
        for name, heading in _SECTIONS:
            if name == "personality":
                subs = [
                    f"## {sub_heading}\n{getattr(self, sub)}"
                    for sub, sub_heading in _PERSONALITY
                    if getattr(self, sub)
                ]
                if subs:
                    blocks.append(f"# {heading}\n" + "\n\n".join(subs))
            elif name == "states":
                if self.states:
                    body = json.dumps([s.to_json() for s in self.states], indent=2, ensure_ascii=False)
                    blocks.append(f"# {heading}\n```json\n{body}\n```")
            elif getattr(self, name):
                blocks.append(f"# {heading}\n{getattr(self, name)}")
        blocks.extend(f"# {title}\n{text}" if text else f"# {title}" for title, text in self.extra)
        return "\n\n".join(blocks) + "\n" if blocks else ""

    def __str__(self) -> str:
        return self.render()

    def _repr_markdown_(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        filled = [name for name in (*_TEXT_FIELDS, "states", "extra") if getattr(self, name)]
        return f"Prompt(sections={filled}, states={len(self.states)}, hash={self.hash!r})"

    @property
    def hash(self) -> str:
        """sha256 of the rendered Markdown, first 12 hex digits (the same as `prompt_hash(render())`)."""
        return prompt_hash(self.render())

    @classmethod
    @checked
    def parse(cls, markdown: str) -> Prompt:
        """Read a prompt back from Markdown (exact on `render()` output; tolerant of hand-written ones: a
        state graph that does not hold is kept, and reported by `validate()`)."""
        if not isinstance(markdown, str):
            raise ConfigError(f"Prompt.parse needs Markdown text, got {type(markdown).__name__}")
        values: dict[str, Any] = {}
        extra: list[tuple[str, str]] = []
        markdown = re.sub(r"\A\s*<!--.*?-->\s*", "", markdown, flags=re.DOTALL)  # e.g. an export's provenance
        preamble, sections = _split(markdown, level=None)
        if preamble:
            values["role"] = preamble
        for title, body in sections:
            key = _ALIASES.get(_norm(title))
            if key is None:
                extra.append((title, body))
            elif key == "personality":
                lead, subs = _split(body, level=None)
                other: list[str] = [lead] if lead else []
                for sub_title, sub_body in subs:
                    sub = _PERSONALITY_ALIASES.get(_norm(sub_title))
                    if sub is None:  # e.g. the realtime guide's Length, Language, Variety
                        other.append(f"### {sub_title}\n{sub_body}" if sub_body else f"### {sub_title}")
                    else:
                        values[sub] = _join(values.get(sub, ""), sub_body)
                if other:
                    values["other_details"] = _join(values.get("other_details", ""), "\n\n".join(other))
            elif key == "states":
                values["states"] = _parse_states(body)
            else:
                values[key] = _join(values.get(key, ""), body)
        values["extra"] = tuple(extra)
        global _TOLERANT
        _TOLERANT = True
        try:
            return cls(**values)
        finally:
            _TOLERANT = False

    # -- variants -----------------------------------------------------------------------------------------
    @checked
    def replace(self, **changes: Any) -> Prompt:
        """A copy with some sections changed, e.g. `p.replace(tone="Calm and slow.")`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"Prompt.replace: unknown section {unknown[0]!r}; sections are {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)

    @checked
    def diff(self, other: Prompt) -> str:
        """A readable diff from this prompt to `other` (see `voicelab.prompts.diff`)."""
        return diff(self, other)

    @checked
    def agent(self, base: Any, **changes: Any) -> Any:
        """`base` (a voicelab Agent) with this prompt as its instructions (and other Agent fields changed)."""
        _require_agent(base, "Prompt.agent(base)")
        return base.clone(instructions=self.render(), **changes)

    # -- validation ---------------------------------------------------------------------------------------
    @checked
    def validate(self, agent: Any = None) -> list[Finding]:
        """Findings: the state graph (duplicate ids, transitions to missing states, states unreachable
        from the first), tools and agents the prompt names that `agent` does not have (when given), and
        the guide's rule to repeat back names and numbers where the states collect them."""
        findings = self._graph_findings()
        if agent is not None:
            _require_agent(agent, "Prompt.validate(agent)")
            findings.extend(_name_findings(self.render(), agent))
        findings.extend(self._repeat_back_findings())
        return findings

    def _graph_findings(self) -> list[Finding]:
        out: list[Finding] = []
        ids = [s.id for s in self.states]
        seen: set[str] = set()
        for state_id in ids:
            if state_id in seen:
                out.append(
                    Finding(
                        "duplicate-state",
                        f"state id {state_id!r} is used by more than one state; give each state its own id",
                        "error",
                    )
                )
            seen.add(state_id)
        for state in self.states:
            for move in state.transitions:
                if move.next_step not in seen:
                    out.append(
                        Finding(
                            "unknown-transition",
                            f"state {state.id!r} moves to {move.next_step!r}, which is not a state; "
                            f"use one of {', '.join(repr(i) for i in ids)}",
                            "error",
                        )
                    )
        if self.states:
            by_id = {s.id: s for s in self.states}
            reached, todo = {self.states[0].id}, [self.states[0].id]
            while todo:
                for move in by_id[todo.pop()].transitions:
                    if move.next_step in by_id and move.next_step not in reached:
                        reached.add(move.next_step)
                        todo.append(move.next_step)
            for state in self.states:
                if state.id not in reached:
                    out.append(
                        Finding(
                            "unreachable-state",
                            f"state {state.id!r} cannot be reached from the first state "
                            f"{self.states[0].id!r}; add a transition to it or remove it",
                        )
                    )
        return out

    def _repeat_back_findings(self) -> list[Finding]:
        collecting = [
            s.id for s in self.states if _COLLECTS.search(" ".join((s.description, *s.instructions)))
        ]
        if not collecting:
            return []
        if _REPEAT_BACK.search(self.render()):
            return []
        return [
            Finding(
                "missing-repeat-back",
                f"state(s) {', '.join(repr(i) for i in collecting)} collect names or numbers but the prompt "
                "never says to repeat them back; add a rule such as 'When the caller gives a name or a "
                "number, repeat it back to confirm before going on.'",
            )
        ]


_TOLERANT = False
_COLLECTS = re.compile(
    r"\b(name|names|number|numbers|phone|e-?mail|address|spell|spelling|digits|date of birth|account)\b",
    re.IGNORECASE,
)
_REPEAT_BACK = re.compile(r"\b(repeat|read)\w*\b[^.\n]{0,60}\bback\b|\bconfirm\w*\b[^.\n]{0,40}\bspell", re.I)
_CODE_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_-]{1,63})(?:\(\))?`|\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\(\)")


def _name_findings(text: str, agent: Any) -> list[Finding]:
    tools = {t.name for t in getattr(agent, "tools", [])}
    handoffs = dict(getattr(agent, "handoff_tools", {}) or {})
    agent_names = {h.agent.name for h in handoffs.values() if getattr(h, "agent", None) is not None}
    for entry in handoffs.values():
        agent_names.update(a.name for a in getattr(entry, "targets", []) or [])
    known = tools | set(handoffs)
    out: list[Finding] = []
    reported: set[str] = set()
    for match in _CODE_NAME.finditer(text):
        name = match.group(1) or match.group(2)
        if name in known or name in reported:
            continue
        if name.startswith("transfer_to_"):
            target = name[len("transfer_to_") :]
            if target in {a.lower().replace(" ", "_") for a in agent_names}:
                continue
            reported.add(name)
            out.append(
                Finding(
                    "unknown-agent",
                    f"the prompt names the handoff {name!r} but agent {agent.name!r} cannot hand off to "
                    f"{target!r}; add that agent to its handoffs or change the prompt "
                    f"(handoffs: {', '.join(sorted(handoffs)) or 'none'})",
                )
            )
        elif "_" in name or match.group(0).endswith("()`") or match.group(2):
            reported.add(name)
            out.append(
                Finding(
                    "unknown-tool",
                    f"the prompt names the tool {name!r} but agent {agent.name!r} has no such tool; add it "
                    f"or change the prompt (tools: {', '.join(sorted(tools)) or 'none'})",
                )
            )
    return out


def _require_agent(value: Any, where: str) -> None:
    from voicelab.agents import Agent

    if not isinstance(value, Agent):
        got = f"the class {value.__name__}" if isinstance(value, type) else type(value).__name__
        raise ConfigError(
            f"{where} takes a voicelab.Agent (an instance, e.g. Agent(name='desk', ...)), got {got}"
        )


@checked
def diff(a: Prompt, b: Prompt, *, a_name: str = "a", b_name: str = "b") -> str:
    """A readable diff of two prompts: a line naming the changed sections, then a unified diff of the
    rendered Markdown. Empty when they render the same."""
    if not isinstance(a, Prompt) or not isinstance(b, Prompt):
        raise ConfigError("diff compares two voicelab.prompts.Prompt values; parse strings with Prompt.parse")
    changed = [f.name for f in dataclasses.fields(Prompt) if getattr(a, f.name) != getattr(b, f.name)]
    if not changed:
        return ""
    lines = difflib.unified_diff(
        a.render().splitlines(), b.render().splitlines(), fromfile=a_name, tofile=b_name, lineterm="", n=1
    )
    return f"changed: {', '.join(changed)}\n" + "\n".join(lines) + "\n"


def prompt_hash(text: str) -> str:
    """sha256 of instructions text, first 12 hex digits (a prompt's identity in exports and experiments)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# -- helpers ----------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return "\n".join(lines).strip()


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    items = _as_list(value, where)
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{where} must be a list of text, got {items!r}")
    return tuple(items)


def _as_list(value: Any, where: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return list(value)
    raise ConfigError(f"{where} must be a list, got {type(value).__name__}")


def _has_heading(text: str, depth: int) -> bool:
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match and len(match.group(1)) <= depth:
            return True
    return False


def _norm(title: str) -> str:
    title = title.strip().strip("*_").rstrip(":").replace("&", "and")
    return re.sub(r"\s+", " ", title).lower()


def _join(old: str, new: str) -> str:
    return f"{old}\n\n{new}" if old and new else old or new


def _split(markdown: str, level: int | None) -> tuple[str, list[tuple[str, str]]]:
    """(text before the first heading, [(title, body)]) at the shallowest heading level present; fenced
    code blocks are not searched for headings."""
    lines = markdown.splitlines()
    fenced = False
    marks: list[tuple[int, int, str]] = []  # (line, level, title)
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            marks.append((number, len(match.group(1)), match.group(2)))
    if not marks:
        return _clean(markdown), []
    top = min(m[1] for m in marks) if level is None else level
    heads = [m for m in marks if m[1] == top]
    preamble = _clean("\n".join(lines[: heads[0][0]]))
    sections = []
    for index, (number, _, title) in enumerate(heads):
        end = heads[index + 1][0] if index + 1 < len(heads) else len(lines)
        sections.append((title.strip(), _clean("\n".join(lines[number + 1 : end]))))
    return preamble, sections


def _parse_states(body: str) -> list[State]:
    match = re.search(r"```(?:json)?\s*\n(.*?)\n\s*```", body, re.DOTALL)
    text = match.group(1) if match else body
    start = text.find("[")
    if start < 0:
        raise ConfigError(
            "the Conversation States section holds no JSON list of states; write them as a ```json block "
            "of objects with id, description, instructions, examples, transitions"
        )
    try:
        data = json.loads(text[start : text.rindex("]") + 1])
    except (json.JSONDecodeError, ValueError) as exc:
        raise ConfigError(
            f"the Conversation States JSON is not valid ({exc}); fix the JSON list of states"
        ) from None
    if not isinstance(data, list):
        raise ConfigError("the Conversation States JSON must be a list of states")
    return [State.from_json(s) for s in data]
