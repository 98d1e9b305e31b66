"""Delegation tools: the request an OpenAI responder builds (sent to a local HTTP server); scripted rules."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from voicelab.agents import OpenAIResponder, ScriptedResponder, ToolContext, delegate_tool
from voicelab.agents.delegation import history_to_messages
from voicelab.errors import ConfigError
from voicelab.protocol.conversation import Item

HISTORY = (
    Item(id="i1", role="user", input_transcript="My parcel never arrived."),
    Item(id="i2", role="assistant", transcript="Let me check that for you."),
    Item(
        id="i3", type="function_call", name="lookup_order", arguments='{"order_number": "A1"}', call_id="c1"
    ),
    Item(id="i4", type="function_call_output", call_id="c1", output="lost in transit"),
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Can I get a new one?"}]},
)


def test_history_to_messages() -> None:
    assert history_to_messages(HISTORY) == [
        {"role": "user", "content": "My parcel never arrived."},
        {"role": "assistant", "content": "Let me check that for you."},
        {"role": "assistant", "content": '[called lookup_order({"order_number": "A1"})]'},
        {"role": "user", "content": "[tool output: lost in transit]"},
        {"role": "user", "content": "Can I get a new one?"},
    ]


class _ChatHandler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Offer a free replacement."},
                }
            ],
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[str]:
    _ChatHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_responder_request(chat_server: str) -> None:
    responder = OpenAIResponder(
        model="gpt-test", api_key="sk-test-key", base_url=chat_server, instructions="Be wise."
    )
    ask = delegate_tool(responder, name="ask_supervisor")
    assert ask.parameters["required"] == ["request"]
    assert ask.takes_context is True
    out = asyncio.run(ask.invoke(ToolContext(history=HISTORY, call_id="c9"), {"request": "Replace it?"}))
    assert out == "Offer a free replacement."
    (request,) = _ChatHandler.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test-key"
    assert request["body"]["model"] == "gpt-test"
    messages = request["body"]["messages"]
    assert messages[0] == {"role": "system", "content": "Be wise."}
    assert messages[1:-1] == history_to_messages(HISTORY)
    assert messages[-1] == {"role": "user", "content": "Request from the voice agent: Replace it?"}
    assert "sk-test-key" not in repr(responder)


def test_openai_responder_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        asyncio.run(OpenAIResponder().respond("x", []))


def test_scripted_responder() -> None:
    responder = ScriptedResponder(
        [
            {"match": r"refund for (?P<order>\w+)", "say": "Approve the refund for {order}."},
            {"match": "new one", "on": "history", "say": "Send a replacement ({request})."},
        ],
        default="Ask a human.",
    )
    ask = delegate_tool(responder)
    assert (
        asyncio.run(ask.invoke(ToolContext(), {"request": "refund for A7?"})) == "Approve the refund for A7."
    )
    out = asyncio.run(ask.invoke(ToolContext(history=HISTORY), {"request": "what now"}))
    assert out == "Send a replacement (what now)."
    assert asyncio.run(ask.invoke(ToolContext(), {"request": "weather?"})) == "Ask a human."
    with pytest.raises(ConfigError, match="needs 'match'"):
        ScriptedResponder([{"say": "x"}])
    with pytest.raises(ConfigError, match="bad regex"):
        ScriptedResponder([{"match": "(", "say": "x"}])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ScriptedResponder(5), ("rules", "list")),
        (lambda: ScriptedResponder({"match": "x", "say": "y"}), ("wrap the one you have",)),
        (lambda: ScriptedResponder([5]), ("rule 0", "dict")),
        (lambda: OpenAIResponder(max_history=-1, api_key="sk-x"), ("max_history", "from 1")),
        (lambda: OpenAIResponder(model=5, api_key="sk-x"), ("model", "str")),
    ],
)
def test_bad_responders_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


def test_the_responder_repr_never_shows_a_key() -> None:
    key = "sk-" + "proj-SECRETabcdefghijklmnopqrstuvwxyz0123456789"
    responder = OpenAIResponder(api_key=key, base_url=f"http://127.0.0.1:1/v1?api_key={key}")
    shown = repr(responder)
    assert key not in shown and "SECRET" not in shown, shown
    assert "api_key=<set>" in shown and "127.0.0.1:1/v1" in shown
