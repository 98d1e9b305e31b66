"""The live timeline widget: waveform envelopes, turns, responses, tools and marks, drawn on a canvas."""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from voicelab.widgets._esm import esm
from voicelab.widgets.tail import TailUpdate


class Timeline(anywidget.AnyWidget):
    """`update(tail_update)` sends what is new in one message; the browser keeps the rest."""

    _esm = esm("timeline")
    height = traitlets.Int(200).tag(sync=True)
    window_s = traitlets.Int(30).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.messages = 0

    def update(self, update: TailUpdate) -> bool:
        """Send the envelopes, spans and marks of `update` (nothing when it has none). True if sent."""
        if not (update.envelopes or update.spans or update.marks):
            return False
        buffers: list[bytes] = []
        envelopes = []
        for env in update.envelopes:
            envelopes.append({"track": env.track, "start": env.start, "n": int(env.mins.size)})
            buffers += [env.mins.tobytes(), env.maxs.tobytes()]
        content = {
            "type": "update",
            "envelopes": envelopes,
            "spans": [s.to_json() for s in update.spans],
            "marks": update.marks,
        }
        self.send(content, buffers=buffers)
        self.messages += 1
        return True

    def reset(self) -> None:
        self.send({"type": "reset"})
        self.messages += 1


__all__ = ["Timeline"]
