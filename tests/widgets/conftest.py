"""Helpers for widget tests without a browser: capture what a widget sends to the front end."""

from __future__ import annotations

from typing import Any

import pytest


class Sent:
    """Records `widget.send(content, buffers)` calls instead of sending them to a front end."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], list[bytes]]] = []

    def __call__(self, content: dict[str, Any], buffers: list[Any] | None = None) -> None:
        self.messages.append((content, [bytes(b) for b in buffers or []]))

    def of(self, kind: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [m for m in self.messages if m[0].get("type") == kind]


@pytest.fixture
def capture() -> Any:
    def attach(widget: Any) -> Sent:
        sent = Sent()
        widget.send = sent
        return sent

    return attach
