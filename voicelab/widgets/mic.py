"""The microphone widget (the call bar): the browser's mic, downsampled to 24 kHz PCM16 in an AudioWorklet,
arrives in the kernel as binary buffers with a sequence number. Also Connect/Disconnect, Interrupt, mode,
mute, push-to-talk and "Play file as caller" (a WAV/FLAC through the same path as the mic)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anywidget
import traitlets

from voicelab.errors import ConfigError
from voicelab.widgets._esm import esm

MODES = ("open", "ptt")
MAX_SETTLE_MS = 3000


@dataclass
class MicStats:
    """What arrived from the browser: batches, samples, sequence gaps, capture-to-kernel delays."""

    batches: int = 0
    samples: int = 0
    gaps: int = 0
    duplicates: int = 0
    last_seq: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    delays_ms: list[float] = field(default_factory=list)  # capture (batch end) -> kernel receive

    @property
    def duration_ms(self) -> float:
        return self.samples / 24.0


class Microphone(anywidget.AnyWidget):
    """The browser microphone and call controls. `on_audio(fn)`: fn(pcm16_bytes, info) per batch."""

    _esm = esm("mic", with_audio=True)
    _css = """
    .voicelab-mic .vl-bar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
    .voicelab-mic .vl-meter { width: 90px; height: 8px; background: #eee; border-radius: 4px;
      overflow: hidden; }
    .voicelab-mic .vl-meter-bar { height: 100%; width: 0%; background: #2ca02c; }
    .voicelab-mic .vl-status { font-size: 12px; color: #555; margin-top: 4px; }
    .voicelab-mic .vl-problem { font-size: 12px; color: #b00020; margin-top: 4px; }
    """
    mode = traitlets.Unicode("open").tag(sync=True)
    muted = traitlets.Bool(False).tag(sync=True)
    batch_ms = traitlets.Int(40).tag(sync=True)
    session_state = traitlets.Unicode("closed").tag(sync=True)  # closed | connecting | open | failed
    status = traitlets.Unicode("Not connected. Click Connect to start a call.").tag(sync=True)
    mic_state = traitlets.Unicode("off").tag(sync=True)  # off | on | error (set by the browser)
    mic_problem = traitlets.Unicode("").tag(sync=True)
    device_rate = traitlets.Int(0).tag(sync=True)
    # The browser's voice processing, asked for at getUserMedia; changing one while the mic is on re-opens it.
    # Auto gain can distort the first words while it settles: turn it off, or let the mic settle first.
    auto_gain = traitlets.Bool(True).tag(sync=True)
    echo_cancellation = traitlets.Bool(True).tag(sync=True)
    noise_suppression = traitlets.Bool(True).tag(sync=True)
    settle_ms = traitlets.Int(0).tag(sync=True)  # after the mic opens, send this long as silence
    track_settings = traitlets.Dict().tag(sync=True)  # what the browser granted (track.getSettings())

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = MicStats()
        self._audio_handlers: list[Callable[[bytes, dict[str, Any]], None]] = []
        self._command_handlers: list[Callable[[dict[str, Any]], None]] = []
        self.on_msg(self._on_custom)

    @traitlets.validate("mode")
    def _check_mode(self, proposal: Any) -> str:
        if proposal["value"] not in MODES:
            raise ConfigError(f"mic mode {proposal['value']!r} is unknown; use 'open' (server VAD) or 'ptt'.")
        return str(proposal["value"])

    @traitlets.validate("batch_ms")
    def _check_batch(self, proposal: Any) -> int:
        value = proposal["value"]
        if not 20 <= value <= 100:
            raise ConfigError(f"mic batch_ms={value} is out of range; use 20 to 100 ms.")
        return int(value)

    @traitlets.validate("settle_ms")
    def _check_settle(self, proposal: Any) -> int:
        value = proposal["value"]
        if isinstance(value, bool) or not 0 <= value <= MAX_SETTLE_MS:
            raise ConfigError(
                f"mic settle_ms={value!r} is out of range; use 0 to {MAX_SETTLE_MS} ms of silence while the "
                "browser's auto gain settles."
            )
        return int(value)

    @property
    def processing(self) -> dict[str, bool]:
        """The voice processing asked for: auto gain, echo cancellation, noise suppression."""
        return {
            "auto_gain": self.auto_gain,
            "echo_cancellation": self.echo_cancellation,
            "noise_suppression": self.noise_suppression,
        }

    def on_audio(self, handler: Callable[[bytes, dict[str, Any]], None]) -> None:
        """Call `handler(pcm16_24khz_bytes, info)` for every batch (info: seq, samples, source)."""
        self._audio_handlers.append(handler)

    def on_command(self, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call `handler(message)` for connect, disconnect, interrupt, ptt, mic_problem, file_* messages."""
        self._command_handlers.append(handler)

    def start(self) -> None:
        """Ask the browser to start capturing (after a connect from code rather than the button)."""
        self.send({"type": "start"})

    def stop(self) -> None:
        self.send({"type": "stop"})

    def _on_custom(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "audio":
            self._on_batch(content, buffers)
            return
        for handler in list(self._command_handlers):
            handler(content)

    def _on_batch(self, content: dict[str, Any], buffers: list[Any]) -> None:
        if not buffers:
            return
        pcm = bytes(buffers[0])
        stats = self.stats
        seq = int(content.get("seq") or 0)
        if stats.last_seq and seq > stats.last_seq + 1:
            stats.gaps += seq - stats.last_seq - 1
        elif stats.last_seq and seq <= stats.last_seq:
            stats.duplicates += 1
            return
        stats.last_seq = seq
        stats.batches += 1
        samples = len(pcm) // 2
        stats.samples += samples
        source = str(content.get("source") or "mic")
        stats.by_source[source] = stats.by_source.get(source, 0) + samples
        captured = content.get("captured_at")
        if isinstance(captured, (int, float)) and len(stats.delays_ms) < 100_000:
            stats.delays_ms.append(time.time() * 1000.0 - float(captured))
        info = {"seq": seq, "samples": samples, "source": source, "captured_at": captured}
        for handler in list(self._audio_handlers):
            handler(pcm, info)

    def __repr__(self) -> str:
        off = [name for name, on in self.processing.items() if not on]
        extra = f", processing off={off}" if off else ""
        settle = f", settle_ms={self.settle_ms}" if self.settle_ms else ""
        return (
            f"Microphone(mode={self.mode!r}, muted={self.muted}, mic_state={self.mic_state!r}{extra}{settle})"
        )


__all__ = ["MAX_SETTLE_MS", "MODES", "MicStats", "Microphone"]
