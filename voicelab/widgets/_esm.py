"""The widgets' JS modules: sibling `.js` files, with the shared audio-context helpers where used."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def esm(name: str, *, with_audio: bool = False) -> str:
    """The ES module text of `name`.js (with audio_context.js in front when the widget uses audio)."""
    text = (HERE / f"{name}.js").read_text(encoding="utf-8")
    if with_audio:
        text = (HERE / "audio_context.js").read_text(encoding="utf-8") + "\n" + text
    return text
