"""Stubs: every kind, manual answers, timeouts, save/load, recorded outputs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from voicelab.agents.stubs import StubError, Stubs
from voicelab.errors import ConfigError


def resolve(stubs: Stubs, name: str, arguments: dict | None = None, call_id: str = "c1") -> str:
    return asyncio.run(stubs.resolve(call_id, name, arguments or {}))


def test_fixed_template_callable() -> None:
    stubs = Stubs().fixed("weather", {"temp": 21}).template("order", "Order {order_number} ships Friday")
    stubs.callable("double", lambda n: n * 2)

    async def slow_echo(text: str) -> dict:
        await asyncio.sleep(0)
        return {"echo": text}

    stubs.callable("echo", slow_echo)
    assert resolve(stubs, "weather") == '{"temp": 21}'
    assert resolve(stubs, "order", {"order_number": "A12"}) == "Order A12 ships Friday"
    assert resolve(stubs, "double", {"n": 4}) == "8"
    assert resolve(stubs, "echo", {"text": "hi"}) == '{"echo": "hi"}'
    assert stubs.kind("order") == "template" and stubs.kind("nope") is None
    assert "weather" in stubs and len(stubs) == 4
    with pytest.raises(StubError, match="needs argument 'order_number'"):
        resolve(stubs, "order", {"id": 1})
    with pytest.raises(StubError, match="no stub is set for 'nope'"):
        resolve(stubs, "nope")


def test_template_definition_errors() -> None:
    with pytest.raises(ConfigError, match="positional field"):
        Stubs().template("t", "Order {} ships")
    with pytest.raises(ConfigError, match="malformed"):
        Stubs().template("t", "Order {order ships")


def test_sequence_then_last_or_error() -> None:
    stubs = Stubs().sequence("s", ["one", "two"]).sequence("e", ["only"], then="error")
    assert [resolve(stubs, "s") for _ in range(4)] == ["one", "two", "two", "two"]
    assert resolve(stubs, "e") == "only"
    with pytest.raises(StubError, match="has only 1 outputs \\(call 2\\)"):
        resolve(stubs, "e")
    with pytest.raises(ConfigError, match="empty"):
        Stubs().sequence("x", [])


def test_manual_answered_by_code() -> None:
    stubs = Stubs().manual("lookup")

    async def scenario() -> tuple[str, list]:
        task = asyncio.create_task(stubs.resolve("call_9", "lookup", {"q": "x"}))
        pending = await stubs.wait_pending("lookup")
        listed = [(p.call_id, p.name, p.arguments) for p in stubs.pending()]
        pending.answer({"found": True})
        return await task, listed

    output, listed = asyncio.run(scenario())
    assert output == '{"found": true}'
    assert listed == [("call_9", "lookup", {"q": "x"})]
    assert stubs.pending() == []
    with pytest.raises(ConfigError, match="no tool call 'call_9' is waiting"):
        stubs.answer("call_9", "late")


def test_manual_timeout_default_and_error() -> None:
    stubs = Stubs().manual("a", timeout=0.01, default="nobody answered").manual("b", timeout=0.01)
    assert resolve(stubs, "a") == "nobody answered"
    with pytest.raises(StubError, match=r"no manual answer for 'b' within 0\.01 s"):
        resolve(stubs, "b")


def test_save_turns_manual_answers_into_fixtures(tmp_path: Path) -> None:
    stubs = Stubs().manual("one").manual("many").manual("never").fixed("f", "x").template("t", "{a}!")
    stubs.sequence("s", ["1", "2"], then="error")

    async def answer_calls() -> None:
        for call_id, name, value in [("c1", "one", "first"), ("c2", "many", "A"), ("c3", "many", "B")]:
            task = asyncio.create_task(stubs.resolve(call_id, name, {}))
            await stubs.wait_pending(name)
            stubs.answer(call_id, value)
            await task

    asyncio.run(answer_calls())
    path = stubs.save(tmp_path / "stubs.json")
    data = json.loads(path.read_text())
    assert data == {
        "voicelab_stubs": 1,
        "stubs": {
            "one": {"kind": "fixed", "output": "first"},
            "many": {"kind": "sequence", "outputs": ["A", "B"], "then": "last"},
            "never": {"kind": "manual", "timeout": None, "default": None},
            "f": {"kind": "fixed", "output": "x"},
            "t": {"kind": "template", "output": "{a}!"},
            "s": {"kind": "sequence", "outputs": ["1", "2"], "then": "error"},
        },
    }
    loaded = Stubs.load(path)
    assert [loaded.kind(n) for n in loaded.names] == [
        "fixed",
        "sequence",
        "manual",
        "fixed",
        "template",
        "sequence",
    ]
    assert (
        resolve(loaded, "many") == "A" and resolve(loaded, "many") == "B" and resolve(loaded, "many") == "B"
    )
    assert resolve(loaded, "t", {"a": "hey"}) == "hey!"


def test_save_refuses_callables_and_load_reports_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="callable stub cannot be saved"):
        Stubs().callable("c", lambda: 1).save(tmp_path / "x.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Stubs.load(bad)
    bad.write_text('{"stubs": {"a": {"kind": "magic"}}}')
    with pytest.raises(ConfigError, match="kind 'magic'"):
        Stubs.load(bad)
    bad.write_text('{"stubs": {"a": {"kind": "fixed"}}}')
    with pytest.raises(ConfigError, match="missing field 'output'"):
        Stubs.load(bad)


def test_recorded_from_events_file(tmp_path: Path) -> None:
    rows = [
        {"t_ms": 1, "dir": "app", "type": "tool_call", "event": {"name": "lookup", "output": "first"}},
        {"t_ms": 2, "dir": "server", "type": "response.done", "event": {}},
        {
            "t_ms": 3,
            "dir": "app",
            "type": "tool_call",
            "event": {"name": "lookup", "output": "x", "error": "boom"},
        },
        {"t_ms": 4, "dir": "app", "type": "tool_call", "event": {"name": "lookup", "output": "second"}},
        {"t_ms": 5, "dir": "app", "type": "tool_call", "event": {"name": "other", "output": "o"}},
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{half a line")
    stubs = Stubs().recorded(tmp_path, names=["lookup"])
    assert stubs.names == ["lookup"] and stubs.kind("lookup") == "recorded"
    assert [resolve(stubs, "lookup") for _ in range(3)] == ["first", "second", "second"]
    with pytest.raises(ConfigError, match="no answered tool_call for \\['missing'\\]"):
        Stubs().recorded(tmp_path, names=["missing"])
    with pytest.raises(ConfigError, match=r"no events\.jsonl"):
        Stubs().recorded(tmp_path / "nowhere")


# -- the held-out probe's kinds of bad input for stubs (issue 8) --------------------------------------------
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Stubs().fixed("bad name!", "x"), ("stub", "letters, digits")),
        (lambda: Stubs().fixed("t", object()), ("not a str or a JSON value",)),
        (lambda: Stubs().fixed("t", float("nan")), ("JSON",)),
        (lambda: Stubs().sequence("t", ["a", {1, 2}]), ("JSON",)),
        (lambda: Stubs().manual("t", default=object()), ("JSON",)),
        (lambda: Stubs().manual("t", timeout=10**12), ("timeout", "a day")),
        (lambda: Stubs().template("t", "{a!z}"), ("conversion", "!r")),
        (lambda: Stubs().template("t", "{a.b}"), ("attribute", "{order_number}")),
        (lambda: Stubs().recorded(5), ("recording", "path")),
        (lambda: Stubs().recorded("rec", names=5), ("names", "list")),
        (lambda: Stubs().recorded("rec", names="lookup_order"), ("wrap the one you have",)),
        (lambda: Stubs().recorded("rec", then="first"), ("then", "'last'")),
        (lambda: Stubs().fixed("lookup", "x").remove("lokup"), ("lokup", "did you mean 'lookup'")),
        (lambda: Stubs().save(5), ("path", "str or pathlib.Path")),
        (lambda: Stubs.load(5), ("path",)),
    ],
)
def test_bad_stub_definitions_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


def test_stub_files_of_the_wrong_kind(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    stubs = Stubs().fixed("t", {"ok": True})
    with pytest.raises(ConfigError, match="is a folder"):
        stubs.save(tmp_path)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        stubs.save(a_file / "stubs.json")
    with pytest.raises(ConfigError, match="does not exist"):
        Stubs.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="is a folder"):
        Stubs.load(tmp_path)
    with pytest.raises(ConfigError, match="not valid JSON"):
        Stubs.load(a_file)
    with pytest.raises(ConfigError, match=r"no events\.jsonl"):
        Stubs().recorded(a_file)
    assert Stubs.load(stubs.save(tmp_path / "stubs.json")).kind("t") == "fixed"


def test_wait_pending_refuses_what_would_wait_forever() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        asyncio.run(Stubs().wait_pending(timeout=-1))
    with pytest.raises(ConfigError, match="timeout"):
        asyncio.run(Stubs().wait_pending(timeout=float("nan")))
    with pytest.raises(ConfigError, match="name must be a str"):
        asyncio.run(Stubs().wait_pending(name=5, timeout=0.1))


def test_a_template_format_spec_must_fit_text_or_numbers() -> None:
    with pytest.raises(ConfigError, match="format spec 'zz'"):
        Stubs().template("t", "{a:zz}")
    stubs = Stubs().template("t", "{a:>6}|{b:.2f}")
    assert asyncio.run(stubs.resolve("c1", "t", {"a": "x", "b": 1.5})) == "     x|1.50"
