"""Identifiers for client events (the server echoes them back only in `error.event_id`)."""

from __future__ import annotations

import itertools
import secrets

_counter = itertools.count(1)


def new_event_id(prefix: str = "vl") -> str:
    """A unique client event id such as `vl_3_9f2c1a`: a process-wide counter plus random hex."""
    return f"{prefix}_{next(_counter)}_{secrets.token_hex(3)}"


def new_item_id() -> str:
    """A client-chosen item id in the server's style (`item_` + 21 characters)."""
    return "item_vl" + secrets.token_hex(7)
