"""The event log widget: recorded client, server and app events, filterable, each expandable to its JSON."""

from __future__ import annotations

import json
from typing import Any

import anywidget
import traitlets

from voicelab.widgets._esm import esm

MAX_JSON = 20_000


def summarize(record: dict[str, Any]) -> str:
    """A one-line hint for an event: its item, text, error or tool."""
    raw = record.get("event")
    event: dict[str, Any] = raw if isinstance(raw, dict) else {}
    for key in ("delta", "transcript", "text", "message", "name"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return value[:80]
    error = event.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")[:80]
    item = event.get("item")
    if isinstance(item, dict):
        return str(item.get("id") or "")
    return str(event.get("item_id") or "")


def to_row(record: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(record.get("event"), indent=1, default=str)
    if len(text) > MAX_JSON:
        text = text[:MAX_JSON] + f"\n... ({len(text) - MAX_JSON} more characters)"
    return {
        "t_ms": float(record.get("t_ms") or 0.0),
        "dir": str(record.get("dir") or ""),
        "type": str(record.get("type") or ""),
        "summary": summarize(record),
        "json": text,
    }


class EventLog(anywidget.AnyWidget):
    """`append(records)` sends a batch of recorded events (audio payloads are already references)."""

    _esm = esm("eventlog")
    height = traitlets.Int(260).tag(sync=True)
    max_rows = traitlets.Int(300).tag(sync=True)
    keep = traitlets.Int(5000).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.messages = 0
        self.count = 0

    def append(self, records: list[dict[str, Any]]) -> bool:
        rows = [to_row(r) for r in records if isinstance(r, dict)]
        if not rows:
            return False
        self.send({"type": "events", "events": rows})
        self.messages += 1
        self.count += len(rows)
        return True


__all__ = ["EventLog", "summarize", "to_row"]
