"""Identifiers in the formats the real Realtime API uses (PROTOCOL.md §5)."""

from __future__ import annotations

import os
import random
import string
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


class IdMaker:
    """Makes `event_…`, `item_…`, `resp_…`, `call_…`, `sess_…` and `conv_…` ids.

    Pass a seed for reproducible ids in tests; by default each maker is seeded from the OS.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "little"))

    def _make(self, prefix: str, length: int) -> str:
        return prefix + "".join(self._random.choices(_ALPHABET, k=length))

    def event(self) -> str:
        return self._make("event_", 21)

    def item(self) -> str:
        return self._make("item_", 21)

    def response(self) -> str:
        return self._make("resp_", 21)

    def call(self) -> str:
        return self._make("call_", 16)

    def session(self) -> str:
        return self._make("sess_", 21)

    def conversation(self) -> str:
        return self._make("conv_", 21)


def stamped(ids: IdMaker, body: dict[str, Any]) -> dict[str, Any]:
    """A server event: `body` with a fresh `event_id` first."""
    return {"event_id": ids.event(), **body}


def error_event(
    ids: IdMaker,
    code: str | None,
    message: str,
    param: str | None,
    client_event_id: str | None,
    kind: str = "invalid_request_error",
) -> dict[str, Any]:
    """An `error` server event (PROTOCOL.md §9)."""
    # a lone surrogate the client sent (e.g. in an item id) must not make the error itself invalid UTF-8
    message = message.encode("utf-8", "replace").decode("utf-8")
    error = {"type": kind, "code": code, "message": message, "param": param, "event_id": client_event_id}
    return stamped(ids, {"type": "error", "error": error})
