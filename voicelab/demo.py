"""The offline demo: a returns-desk agent with tools, a scripted caller and the embedded server.

No key and no network are needed.

`run_demo(out_dir)` starts the embedded server with the bundled `returns_desk` script, connects a session
with server VAD and input transcription, speaks a synthetic caller's turns into it in real time, and writes
the recording, the tables (CSV) and the session figure to `out_dir`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from voicelab.agents import Agent, tool
from voicelab.audio.core import Audio
from voicelab.caller import play_turns
from voicelab.errors import ConfigError
from voicelab.speech.corpus import CONVERSATIONS, make_conversation

RETURNS_INSTRUCTIONS = """\
# Personality and Tone
You are the returns desk of an online shop: warm, brief, and precise. Speak in short sentences.

# Task
Help the caller return an order: ask for the order number, look the order up with `lookup_order`, offer a
return label and create it with `create_return_label`. If the caller asks for a person, use
`transfer_to_human`.
"""


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order by its number.

    Args:
        order_number: The order number as the caller said it, digits or words.
    """
    return f"It was delivered on March third and is within the thirty day return window ({order_number})."


@tool
def create_return_label(delivery: str = "email") -> str:
    """Create a prepaid return label for the order being returned.

    Args:
        delivery: How to send the label: email or post.
    """
    return f"The return label is on its way by {delivery}."


def returns_desk_agent() -> Agent:
    """The demo agent: the bundled `returns_desk` script plays its part on the embedded server."""
    human = Agent(
        name="human",
        instructions="You are a person at the returns desk who takes over calls from the assistant.",
        handoff_description="A person who takes over the call.",
    )
    return Agent(
        name="returns_desk",
        instructions=RETURNS_INSTRUCTIONS,
        tools=[lookup_order, create_return_label],
        handoffs=[human],
        voice="marin",
        turn_detection={
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        },
        transcription={"model": "gpt-4o-mini-transcribe"},
    )


@dataclass
class DemoResult:
    out_dir: Path
    recording: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def caller_turns(conversation: str = "returns", voice: str = "echo", seed: int = 7) -> list[Audio]:
    """The bundled caller conversation as one Audio per turn (speech only; the caller adds the silences)."""
    if conversation not in CONVERSATIONS:
        raise ConfigError(
            f"unknown conversation {conversation!r}; choose one of {', '.join(sorted(CONVERSATIONS))}."
        )
    labelled = make_conversation(CONVERSATIONS[conversation], voice=voice, seed=seed)
    return [labelled.audio.slice_ms(seg.start_ms, seg.end_ms) for seg in labelled.segments]


async def run_demo_async(
    out_dir: str | Path = "voicelab-demo",
    *,
    conversation: str = "returns",
    url: str | None = None,
    pace: str = "realtime",
    realtime: bool = True,
    quiet: bool = False,
) -> DemoResult:
    """Run the demo; with `url=None` against a fresh embedded server (the default), else against `url`."""
    from voicelab import tables
    from voicelab.plots import plot_recording
    from voicelab.recording import load_recording
    from voicelab.server import serve
    from voicelab.session import connect

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    turns = caller_turns(conversation)
    say = (lambda *a: None) if quiet else print
    server = serve("returns_desk", pace=pace) if url is None else None  # type: ignore[arg-type]
    try:
        target = server.url if server is not None else url
        say(f"voicelab demo: embedded Realtime server at {target}" if server else f"voicelab demo: {target}")
        agent = returns_desk_agent()
        session = connect(
            agent, url=target, api_key="sk-local" if server else None, record_dir=_new_recording_dir(out)
        )
        async with session:
            printer = asyncio.create_task(_print_transcript(session, say))
            try:
                await play_turns(session, turns, realtime=realtime)
            finally:
                printer.cancel()
            recording_path = session.recording_path
    finally:
        if server is not None:
            server.close()
    assert recording_path is not None
    rec = load_recording(recording_path)
    result = DemoResult(out_dir=out, recording=recording_path)
    frames = {
        "turns": tables.turns(rec),
        "history": tables.history(rec),
        "tool_calls": tables.tool_calls(rec),
        "usage": tables.usage(rec),
    }
    for name, frame in frames.items():
        path = out / f"{name}.csv"
        readable_csv(frame).to_csv(path, index=False)
        result.files[name] = path
    title = f"voicelab demo: {conversation} caller vs returns desk (embedded server)"
    if not realtime:
        # Fast runs send audio faster than real time: the audio tracks and the event clock do not line up.
        title += " - fast run: audio and events do not line up (run without --fast)"
    figure = plot_recording(rec, title=title)
    figure.savefig(out / "session.png")
    result.files["figure"] = out / "session.png"
    result.summary = {
        "user_turns": len(frames["turns"]),
        "responses": len(frames["usage"]),
        "tool_calls": len(frames["tool_calls"]),
        "median_eos_to_first_audio_ms": _median(frames["turns"]["eos_to_first_audio_ms"]),
        "median_speech_end_to_first_audio_ms": _median(frames["turns"]["speech_end_to_first_audio_ms"]),
    }
    say(
        f"\n{_count(result.summary['user_turns'], 'user turn')}, "
        f"{_count(result.summary['responses'], 'response')}, "
        f"{_count(result.summary['tool_calls'], 'tool call')}; "
        "median end of speech -> first audio: "
        f"{_fmt_ms(result.summary['median_speech_end_to_first_audio_ms'])} "
        f"(from the server's end of turn: {_fmt_ms(result.summary['median_eos_to_first_audio_ms'])})"
    )
    print(f"recording: {recording_path}")  # the output paths, also with quiet=True (`voicelab demo --quiet`)
    for name, path in result.files.items():
        print(f"{name}: {path}")
    return result


def run_demo(out_dir: str | Path = "voicelab-demo", **kwargs: Any) -> DemoResult:
    """Blocking wrapper of `run_demo_async` for scripts and the CLI."""
    return asyncio.run(run_demo_async(out_dir, **kwargs))


async def _print_transcript(session: Any, say: Any) -> None:
    async for event in session:
        kind = getattr(event, "type", "")
        if kind == "transcript_done":
            who = "caller" if event.role == "user" else "agent "
            say(f"  {who}: {event.transcript}")
        elif kind == "tool_call":
            say(f"  tool  : {event.name}({event.arguments}) -> {event.output}")
        elif kind == "handoff":
            say(f"  handoff: {event.from_agent} -> {event.to_agent}")
        elif kind == "error":
            say(f"  error : {event.message}")


def _new_recording_dir(out: Path) -> Path:
    """A fresh folder per run under `out/recordings/`, so the demo can be run again into the same folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = out / "recordings" / stamp, 1
    while candidate.exists():
        n += 1
        candidate = out / "recordings" / f"{stamp}-{n}"
    return candidate


def readable_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for a CSV a person reads: times to the microsecond (no float noise such as
    22.23199999999997), dict and list cells as JSON rather than Python reprs."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(3)
        elif frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return frame


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _median(column: Any) -> float | None:
    values = column.dropna()
    return float(values.median()) if len(values) else None


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
