"""Tools: schemas from signatures via pydantic, argument checks, declared tools, invocation."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel

from voicelab.agents.tools import (
    FunctionTool,
    ToolArgumentsError,
    ToolContext,
    check_arguments,
    parse_docstring,
    tool,
    validate_parameters_schema,
)
from voicelab.errors import ConfigError


@tool
def lookup_order(ctx: ToolContext, order_number: str, detail: Literal["status", "items"] = "status") -> dict:
    """Look up an order by its number.

    Longer text that is not the summary.

    Args:
        order_number: The order's number, e.g. A123.
        detail: What to return.
    """
    return {"order": order_number, "detail": detail, "call": ctx.call_id, "turns": len(ctx.history)}


class Address(BaseModel):
    city: str
    zip_code: str


@tool(name="ship_to", needs_approval=True, description="Ship an order.")
async def ship(order_number: str, address: Address, express: bool = False) -> str:
    """
    :param order_number: which order
    :param address: where to
    """
    return f"{order_number} -> {address.city} ({'express' if express else 'standard'})"


def test_schema_from_signature_and_docstring() -> None:
    assert lookup_order.name == "lookup_order"
    assert lookup_order.description == "Look up an order by its number."
    assert lookup_order.takes_context is True
    assert lookup_order.parameters == {
        "type": "object",
        "properties": {
            "order_number": {"type": "string", "description": "The order's number, e.g. A123."},
            "detail": {
                "type": "string",
                "enum": ["status", "items"],
                "default": "status",
                "description": "What to return.",
            },
        },
        "required": ["order_number"],
        "additionalProperties": False,
    }
    assert lookup_order.to_session_tool()["type"] == "function"


def test_decorator_with_arguments_and_nested_model() -> None:
    assert ship.name == "ship_to"
    assert ship.description == "Ship an order."
    assert ship.needs_approval is True
    assert ship.takes_context is False
    props = ship.parameters["properties"]
    assert props["order_number"]["description"] == "which order"
    assert props["express"] == {"type": "boolean", "default": False}
    assert props["address"]["$ref"] == "#/$defs/Address"
    assert ship.parameters["$defs"]["Address"]["required"] == ["city", "zip_code"]
    assert ship.parameters["required"] == ["order_number", "address"]


def test_docstring_styles() -> None:
    summary, params = parse_docstring(
        """Do a thing.

        Args:
            a (int): first
                continued here.
            b: second
        Returns:
            nothing
        """
    )
    assert summary == "Do a thing."
    assert params == {"a": "first continued here.", "b": "second"}
    assert parse_docstring(":param x: the x\n:param int y: the y") == ("", {"x": "the x", "y": "the y"})
    assert parse_docstring(None) == ("", {})


def test_parse_arguments_validates_with_pydantic() -> None:
    assert lookup_order.parse_arguments('{"order_number": "A1"}') == {"order_number": "A1"}
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        lookup_order.parse_arguments("{order")
    with pytest.raises(ToolArgumentsError, match="must be a JSON object, got list"):
        lookup_order.parse_arguments("[1]")
    with pytest.raises(ToolArgumentsError, match=r"order_number: Input should be a valid string"):
        lookup_order.parse_arguments('{"order_number": 5}')
    with pytest.raises(ToolArgumentsError, match=r"detail: Input should be 'status' or 'items'"):
        lookup_order.parse_arguments('{"order_number": "A1", "detail": "price"}')
    with pytest.raises(ToolArgumentsError, match=r"extra: Extra inputs are not permitted"):
        lookup_order.parse_arguments('{"order_number": "A1", "extra": 1}')


def test_empty_arguments_miss_required() -> None:
    with pytest.raises(ToolArgumentsError, match=r"order_number: Field required"):
        lookup_order.parse_arguments("")


def test_invoke_sync_and_async_with_context() -> None:
    ctx = ToolContext(history=("a", "b"), call_id="call_1")
    out = asyncio.run(lookup_order.invoke(ctx, {"order_number": "A1"}))
    assert out == '{"order": "A1", "detail": "status", "call": "call_1", "turns": 2}'
    shipped = asyncio.run(
        ship.invoke(ToolContext(), {"order_number": "A1", "address": {"city": "Oslo", "zip_code": "1"}})
    )
    assert shipped == "A1 -> Oslo (standard)"


def test_declared_tool_structural_checks() -> None:
    declared = FunctionTool.declared(
        "get_weather",
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "Weather for a city.",
    )
    assert not declared.implemented
    assert declared.parse_arguments('{"city": "Paris"}') == {"city": "Paris"}
    with pytest.raises(ToolArgumentsError, match=r"missing required argument 'city'"):
        declared.parse_arguments('{"unit": "c"}')
    with pytest.raises(ToolArgumentsError, match=r"unit should be one of \['c', 'f'\], got 'k'"):
        declared.parse_arguments('{"city": "Paris", "unit": "k"}')
    with pytest.raises(ToolArgumentsError, match=r"unexpected argument 'x'"):
        declared.parse_arguments('{"city": "Paris", "x": 1}')
    with pytest.raises(ConfigError, match="declared without an implementation; give it a stub"):
        asyncio.run(declared.invoke(ToolContext(), {"city": "Paris"}))
    assert FunctionTool.declared("ping").parameters == {"type": "object", "properties": {}}


def test_check_arguments_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "flag": {"type": "boolean"},
        },
    }
    assert check_arguments(schema, {"n": 1, "tags": ["a"], "flag": True}) == []
    assert check_arguments(schema, {"n": True, "tags": ["a", 2], "flag": 1}) == [
        "n should be integer, got bool",
        "tags[1] should be string, got int",
        "flag should be boolean, got int",
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "must be a JSON schema dict"),
        ({"type": "array"}, '"type": "object"'),
        ({"type": "object", "properties": []}, '"properties" must be a dict'),
        ({"type": "object", "properties": {"a": "string"}}, "property 'a' must be a schema dict"),
        ({"type": "object", "properties": {"a": {"type": "text"}}}, "unknown type 'text'"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "\\['b'\\]"),
        ({"type": "object", "properties": {"a": {"enum": "x"}}}, '"enum" must be a list'),
    ],
)
def test_invalid_schemas_fail_early(schema: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_parameters_schema(schema, "t")


def test_invalid_tool_definitions() -> None:
    with pytest.raises(ConfigError, match="tool name 'bad name'"):
        FunctionTool.declared("bad name")

    def varargs(*items: str) -> str:
        return ""

    with pytest.raises(ConfigError, match=r"\*items cannot be described"):
        tool(varargs)

    def late_context(a: str, ctx: ToolContext) -> str:
        return a

    with pytest.raises(ConfigError, match="ToolContext parameter must come first"):
        tool(late_context)

    def unschemable(x: object) -> str:
        return ""

    assert tool(unschemable).parameters["properties"]["x"] == {}


def _double(x: int) -> int:
    return 2 * x


class _NotATool:
    def __init__(self, x: int) -> None:
        self.x = x


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: tool(name="")(_double), ("name", "empty")),
        (lambda: tool(name=5)(_double), ("name", "str")),
        (lambda: tool(description=5)(_double), ("description", "str")),
        (lambda: tool(needs_approval="yes")(_double), ("needs_approval", "True")),
        (lambda: tool(needs_approval=lambda *a: True), ("needs_approval",)),
        (lambda: tool(_NotATool), ("class _NotATool", "function")),
        (lambda: FunctionTool("t", 5, {"type": "object", "properties": {}}), ("description", "str")),
        (lambda: FunctionTool("t", "d", {"type": "object", "properties": {}}, func=5), ("func", "function")),
    ],
)
def test_bad_tool_definitions_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
    assert tool(name="double", description="", needs_approval=True)(_double).needs_approval is True
