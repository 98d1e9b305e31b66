"""Function tools: JSON schemas from Python signatures (via pydantic), declared-only tools, argument checks.

`@tool` turns a sync or async function into a `FunctionTool`. The schema comes from the signature, the type
hints and the docstring's parameter descriptions via `pydantic.create_model`; calls are validated by the same
model. An optional first parameter typed `ToolContext` receives the call's context and is not in the schema.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from voicelab.checks import checked, text
from voicelab.errors import ConfigError

JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ToolContext:
    """What a tool sees of the session when it runs: a snapshot of the history, the agent and the call id."""

    history: tuple[Any, ...] = ()
    agent: Any = None
    call_id: str = ""
    name: str = ""
    context: Any = None


class ToolArgumentsError(ValueError):
    """The model's arguments for a tool call are not JSON or do not fit the tool's schema."""


@dataclass(eq=False)
class FunctionTool:
    """A function the model may call: its name, description, JSON-schema parameters and implementation.

    `func` is None for a tool declared without an implementation (`FunctionTool.declared`): such a call
    must be answered by a stub.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any] | None = None
    needs_approval: bool = False
    takes_context: bool = False
    arguments_model: type[BaseModel] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        validate_tool_name(self.name)
        validate_parameters_schema(self.parameters, self.name)
        text(self.description, "description", empty=True, where=f"tool {self.name!r}")
        if self.func is not None and (isinstance(self.func, type) or not callable(self.func)):
            got = (
                f"the class {self.func.__name__}" if isinstance(self.func, type) else type(self.func).__name__
            )
            raise ConfigError(
                f"tool {self.name!r}: func must be a function, got {got}; decorate a function with "
                "@voicelab.tool"
            )
        flag_approval(self.needs_approval, self.name)

    @classmethod
    def declared(
        cls,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        description: str = "",
        *,
        needs_approval: bool = False,
    ) -> FunctionTool:
        """A tool with a schema and no implementation: answer its calls with `Stubs`."""
        validate_tool_name(name)
        if parameters is not None and not isinstance(parameters, Mapping):
            raise ConfigError(
                f"tool {name!r} parameters must be a JSON schema dict, got {type(parameters).__name__}; e.g. "
                '{"type": "object", "properties": {"city": {"type": "string"}}}'
            )
        if not isinstance(description, str):
            raise ConfigError(f"tool {name!r} description must be a str, got {type(description).__name__}")
        schema = dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
        return cls(name=name, description=description, parameters=schema, needs_approval=needs_approval)

    @property
    def implemented(self) -> bool:
        return self.func is not None

    def to_session_tool(self) -> dict[str, Any]:
        """The GA `session.tools` entry for this tool."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        """Decode and check the model's JSON arguments; raise ToolArgumentsError naming what is wrong."""
        try:
            decoded = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolArgumentsError(f"arguments for {self.name} are not valid JSON ({exc.msg})") from None
        if not isinstance(decoded, dict):
            raise ToolArgumentsError(
                f"arguments for {self.name} must be a JSON object, got {type(decoded).__name__}"
            )
        if self.arguments_model is not None:
            try:
                self.arguments_model.model_validate(decoded)
            except ValidationError as exc:
                raise ToolArgumentsError(_describe_validation_error(self.name, exc)) from None
        else:
            problems = check_arguments(self.parameters, decoded)
            if problems:
                raise ToolArgumentsError(
                    f"arguments for {self.name} do not fit its schema: {'; '.join(problems)}"
                )
        return decoded

    async def invoke(self, context: ToolContext, arguments: Mapping[str, Any]) -> str:
        """Run the implementation with checked arguments and return its output as a string."""
        if self.func is None:
            raise ConfigError(
                f"tool {self.name!r} is declared without an implementation; "
                f"give it a stub, e.g. stubs.fixed({self.name!r}, '...')"
            )
        kwargs = dict(arguments)
        if self.arguments_model is not None:
            validated = self.arguments_model.model_validate(kwargs)
            kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        result = self.func(context, **kwargs) if self.takes_context else self.func(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return output_to_string(result)


def output_to_string(value: Any) -> str:
    """Tool outputs go to the model as strings: str as is, pydantic models and other values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)


_TYPE_HINTS = (
    "str, int, float, bool, list[...], dict[str, ...], Literal[...], a TypedDict or a pydantic model"
)


def _schema_problem(name: str, func: Callable[..., Any], fields: dict[str, Any], exc: Exception) -> str:
    """One line naming the parameter whose type hint has no JSON schema (pydantic's own message is a page)."""
    for param, (annotation, _) in fields.items():
        try:
            TypeAdapter(annotation).json_schema()
        except Exception:
            shown = getattr(annotation, "__name__", None) or repr(annotation)
            return (
                f"tool {name!r}: parameter {param!r} of {func.__qualname__} has type {shown}, which has no "
                f"JSON schema; annotate it with {_TYPE_HINTS}"
            )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"tool {name!r}: no JSON schema for {func.__qualname__}'s signature ({first}); use {_TYPE_HINTS}"


def flag_approval(value: Any, tool_name: str) -> None:
    """needs_approval is True or False (a callable, as the Agents SDK allows, is not run by voicelab)."""
    if not isinstance(value, bool):
        raise ConfigError(
            f"tool {tool_name!r}: needs_approval={value!r} must be True (ask before every call) or False"
        )


def validate_tool_name(name: str) -> None:
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ConfigError(
            f"tool name {name!r} is invalid: use 1-64 letters, digits, '_' or '-' (e.g. 'lookup_order')"
        )


def validate_parameters_schema(schema: Any, tool_name: str) -> None:
    """A structural check of a tool's JSON schema: a top-level object with well-formed properties."""
    where = f"tool {tool_name!r} parameters"
    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where} must be a JSON schema dict, got {type(schema).__name__}")
    if schema.get("type") != "object":
        raise ConfigError(f'{where} must be a JSON schema with "type": "object" at the top level')
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        raise ConfigError(f'{where}: "properties" must be a dict of property name -> schema')
    for prop, sub in properties.items():
        _check_subschema(sub, f"{where}: property {prop!r}")
    required = schema.get("required", [])
    if not isinstance(required, Sequence) or isinstance(required, str):
        raise ConfigError(f'{where}: "required" must be a list of property names')
    missing = [name for name in required if name not in properties]
    if missing:
        raise ConfigError(
            f'{where}: "required" names {missing} which are not in "properties"; add or remove them'
        )


def _check_subschema(sub: Any, where: str) -> None:
    if not isinstance(sub, Mapping):
        raise ConfigError(f"{where} must be a schema dict, e.g. {{'type': 'string'}}")
    kind = sub.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for item in kinds:
        if item not in JSON_TYPES:
            raise ConfigError(f"{where} has unknown type {item!r}; use one of {', '.join(JSON_TYPES)}")
    if "enum" in sub and not isinstance(sub["enum"], list):
        raise ConfigError(f'{where}: "enum" must be a list of allowed values')
    if "object" in kinds and "properties" in sub:
        nested = sub["properties"]
        if not isinstance(nested, Mapping):
            raise ConfigError(f'{where}: "properties" must be a dict')
        for name, inner in nested.items():
            _check_subschema(inner, f"{where}.{name}")
    if "array" in kinds and "items" in sub:
        _check_subschema(sub["items"], f"{where} items")


def check_arguments(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> list[str]:
    """Problems of `arguments` against a declared tool's schema (required, types, enums, extra keys)."""
    problems: list[str] = []
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in arguments:
            problems.append(f"missing required argument {name!r}")
    for name, value in arguments.items():
        if name not in properties:
            if schema.get("additionalProperties") is False:
                problems.append(f"unexpected argument {name!r}")
            continue
        problems.extend(_check_value(properties[name], value, name))
    return problems


def _check_value(sub: Mapping[str, Any], value: Any, where: str) -> list[str]:
    kind = sub.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if kinds and not any(_is_json_type(value, item) for item in kinds):
        return [f"{where} should be {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in sub and value not in sub["enum"]:
        return [f"{where} should be one of {sub['enum']}, got {value!r}"]
    if isinstance(value, Mapping) and "properties" in sub:
        return [f"{where}.{p}" for p in check_arguments(sub, value)]
    if isinstance(value, list) and isinstance(sub.get("items"), Mapping):
        return [p for i, v in enumerate(value) for p in _check_value(sub["items"], v, f"{where}[{i}]")]
    return []


def _is_json_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, Mapping)
    return value is None


def _describe_validation_error(tool_name: str, exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{location}: {error['msg']}")
    return f"arguments for {tool_name} do not fit its schema: {'; '.join(parts)}"


# -- schema from a signature -----------------------------------------------------------------------------

_GOOGLE_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_PARAM = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:\s]+\s+)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and per-parameter descriptions (Google or Sphinx style)."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    args_indent = 0
    for line in lines:
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        if _GOOGLE_SECTION.match(line):
            in_args, current = True, None
            continue
        if in_args:
            if not line.strip():
                current = None
                continue
            indent = len(line) - len(line.lstrip())
            if indent == 0:
                in_args = False
            else:
                match = _GOOGLE_PARAM.match(line)
                if match and (current is None or indent <= args_indent):
                    current, args_indent = match.group(1), indent
                    params[current] = match.group(2).strip()
                elif current is not None:
                    params[current] = f"{params[current]} {line.strip()}".strip()
                continue
        if current is not None and line.startswith(" ") and line.strip():
            params[current] = f"{params[current]} {line.strip()}".strip()
            continue
        current = None
        if not params and not in_args and not line.lstrip().startswith(":"):
            summary.append(line)
    text = "\n".join(summary).strip()
    return re.split(r"\n\s*\n", text)[0].replace("\n", " ") if text else "", params


def _is_tool_context(annotation: Any) -> bool:
    return annotation is ToolContext or (isinstance(annotation, str) and annotation.endswith("ToolContext"))


def schema_from_function(
    func: Callable[..., Any], name: str
) -> tuple[dict[str, Any], type[BaseModel], bool, str]:
    """(JSON schema, pydantic arguments model, takes_context, docstring summary) of a function."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # unresolvable forward references
        raise ConfigError(
            f"tool {name!r}: cannot resolve the type hints of {func.__qualname__} ({exc}); "
            "import the types the annotations name at module level"
        ) from None
    summary, descriptions = parse_docstring(func.__doc__)
    parameters = list(signature.parameters.values())
    takes_context = bool(parameters) and _is_tool_context(
        hints.get(parameters[0].name, parameters[0].annotation)
    )
    if takes_context:
        parameters = parameters[1:]
    fields: dict[str, Any] = {}
    for param in parameters:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(
                f"tool {name!r}: parameter *{param.name} cannot be described to the model; "
                "use named parameters with type hints"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {name!r}: make parameter {param.name!r} a normal (not positional-only) one"
            )
        if _is_tool_context(hints.get(param.name)):
            raise ConfigError(f"tool {name!r}: a ToolContext parameter must come first")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=descriptions.get(param.name)))
    model_name = "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]", name) if part) + "Arguments"
    try:
        model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
        schema = model.model_json_schema()
    except Exception as exc:
        raise ConfigError(_schema_problem(name, func, fields, exc)) from None
    return _tidy_schema(schema), model, takes_context, summary


def _tidy_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles (noise to the model); keep everything else."""

    def strip(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                key: strip(value, key in ("properties", "$defs"))
                for key, value in node.items()
                if in_properties or key != "title"
            }
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    tidy = strip(schema)
    tidy.setdefault("properties", {})
    tidy.setdefault("required", [])
    return tidy


def function_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
) -> FunctionTool:
    """Build a FunctionTool from a function (what `@tool` does)."""
    if isinstance(func, type):
        raise ConfigError(
            f"@tool needs a function, got the class {func.__name__}; decorate a function (or a method of an "
            "instance) that does the work"
        )
    if not callable(func):
        raise ConfigError(f"@tool needs a function, got {type(func).__name__}")
    text(name, "name", none=True, example="lookup_order", where="@tool")
    text(description, "description", none=True, empty=True, where="@tool")
    tool_name = name if name is not None else getattr(func, "__name__", "")
    flag_approval(needs_approval, tool_name)
    validate_tool_name(tool_name)
    schema, model, takes_context, summary = schema_from_function(func, tool_name)
    return FunctionTool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        func=func,
        needs_approval=needs_approval,
        takes_context=takes_context,
        arguments_model=model,
    )


@overload
def tool(func: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, needs_approval: bool = False
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


@checked
def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Decorator for sync or async functions: `@tool` or `@tool(name=..., needs_approval=True, ...)`."""
    if func is not None:
        return function_tool(func, name=name, description=description, needs_approval=needs_approval)
    text(name, "name", none=True, example="lookup_order", where="@tool")
    text(description, "description", none=True, empty=True, where="@tool")
    flag_approval(needs_approval, name or "?")

    def decorate(inner: Callable[..., Any]) -> FunctionTool:
        return function_tool(inner, name=name, description=description, needs_approval=needs_approval)

    return decorate


__all__ = [
    "FunctionTool",
    "ToolArgumentsError",
    "ToolContext",
    "check_arguments",
    "function_tool",
    "output_to_string",
    "parse_docstring",
    "schema_from_function",
    "tool",
    "validate_parameters_schema",
]
