"""History helpers: send a user message, and make the server's conversation match an edited history."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any


async def send_message(session: Any, text: str, *, respond: bool = True) -> None:
    """Add a user text message to the conversation and (by default) ask for a response."""
    await session.send_text(text, respond=respond)


def _item_id(item: Any) -> str | None:
    return item.get("id") if isinstance(item, Mapping) else getattr(item, "id", None)


def _wire_item(item: Any) -> dict[str, Any]:
    """A `conversation.item.create` item from a history item (dict as is; voicelab Items rebuilt)."""
    if isinstance(item, Mapping):
        return {key: value for key, value in item.items() if value is not None}
    kind = getattr(item, "type", "message")
    if kind == "function_call":
        return {
            "type": "function_call",
            "id": item.id,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "id": item.id,
            "call_id": item.call_id,
            "output": item.output or "",
        }
    role = item.role or "user"
    text = item.input_transcript or item.transcript or item.text
    if not text:
        text = " ".join(
            str(part.get("text") or part.get("transcript") or "") for part in item.content
        ).strip()
    part_type = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "id": item.id, "role": role, "content": [{"type": part_type, "text": text}]}


def _current_history(session: Any) -> list[Any]:
    history = getattr(session, "history", ())
    if callable(history):
        history = history()
    return list(history or ())


async def update_history(session: Any, items: Sequence[Any]) -> dict[str, list[str]]:
    """Make the conversation equal `items` (kept in order): items no longer listed are deleted, new items are
    created after their predecessor, and an item listed as a dict with the id of an existing item but a
    different content replaces it (delete + create). Returns {"deleted": [...], "created": [...]} (ids)."""
    current = _current_history(session)
    current_ids = [_item_id(item) for item in current]
    current_by_id = {_item_id(item): item for item in current}
    wanted_ids = [_item_id(item) for item in items]
    deleted: list[str] = []
    created: list[str] = []
    replaced = {
        _item_id(item)
        for item in items
        if isinstance(item, Mapping)
        and _item_id(item) in current_by_id
        and _wire_item(item) != _wire_item(current_by_id[_item_id(item)])
    }
    for item_id in current_ids:
        if item_id is not None and (item_id not in wanted_ids or item_id in replaced):
            await _maybe_await(session.delete_item(item_id))
            deleted.append(item_id)
    previous: str | None = "root"
    for item in items:
        item_id = _item_id(item)
        if item_id in current_by_id and item_id not in replaced:
            previous = item_id
            continue
        await _maybe_await(session.create_item(_wire_item(item), previous_item_id=previous))
        if item_id is not None:
            created.append(item_id)
            previous = item_id
        else:
            previous = None  # unknown id: following new items append
    return {"deleted": deleted, "created": created}


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


__all__ = ["send_message", "update_history"]
