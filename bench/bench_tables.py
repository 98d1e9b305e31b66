"""Bench: all voicelab.tables for a synthetic one-hour recording, against just json-parsing its events.

Prints one JSON line per figure. The recording has 360 server-VAD turns of 10 s: user audio appended every
100 ms, a reply of 4 s of output audio deltas (every 100 ms, as $audio references), transcript deltas,
input transcriptions, and a tool call every fifth turn.

    python bench/bench_tables.py [--turns 360] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicelab import tables
from voicelab.recording import load_recording

TURN_MS = 10_000.0
WORDS = [
    "thanks",
    "for",
    "calling",
    "the",
    "returns",
    "desk",
    "how",
    "can",
    "I",
    "help",
    "you",
    "today",
    "with",
    "your",
    "order",
]


def _ref(track: str, start: float, ms: float = 100.0) -> dict[str, Any]:
    return {"$audio": {"track": track, "start_ms": start, "duration_ms": ms}}


def synthesize(folder: Path, turns: int) -> int:
    """Write a realistic recording of `turns` 10 s turns; returns the number of events."""
    lines: list[tuple[float, dict[str, Any]]] = []
    n = 0

    def add(t: float, direction: str, type_: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        event = {"type": type_, **fields}
        if direction == "server":
            event["event_id"] = f"event_{n:021d}"
        lines.append((t, {"t_ms": round(t, 3), "dir": direction, "type": type_, "event": event}))

    total_ms = turns * TURN_MS
    t = 0.0
    while t < total_ms:  # the microphone streams all along
        add(t, "client", "input_audio_buffer.append", audio=_ref("input", t))
        t += 100.0
    previous: str | None = None
    out_ms = 0.0
    for k in range(turns):
        base = k * TURN_MS
        user, resp = f"item_u{k:05d}", f"resp_{k:05d}"
        add(base + 300, "server", "input_audio_buffer.speech_started", audio_start_ms=base, item_id=user)
        add(
            base + 3700, "server", "input_audio_buffer.speech_stopped", audio_end_ms=base + 3500, item_id=user
        )
        add(base + 3710, "server", "input_audio_buffer.committed", item_id=user, previous_item_id=previous)
        item = {
            "id": user,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        add(base + 3720, "server", "conversation.item.added", item=item, previous_item_id=previous)
        add(base + 3730, "server", "conversation.item.done", item=item, previous_item_id=previous)
        previous = user
        start = base + 3750
        if k % 5 == 0:
            call, fc, fco = f"call_{k:05d}", f"item_f{k:05d}", f"item_o{k:05d}"
            add(start, "server", "response.created", response={"id": resp + "t", "status": "in_progress"})
            fc_item = {
                "id": fc,
                "type": "function_call",
                "status": "completed",
                "call_id": call,
                "name": "lookup_order",
                "arguments": f'{{"order_id": "A{k}"}}',
            }
            add(
                start + 50,
                "server",
                "response.output_item.added",
                response_id=resp + "t",
                output_index=0,
                item={**fc_item, "status": "in_progress", "arguments": ""},
            )
            add(start + 55, "server", "conversation.item.added", item=fc_item, previous_item_id=previous)
            add(
                start + 120,
                "server",
                "response.function_call_arguments.done",
                response_id=resp + "t",
                item_id=fc,
                output_index=0,
                call_id=call,
                name="lookup_order",
                arguments=fc_item["arguments"],
            )
            add(
                start + 130,
                "server",
                "response.output_item.done",
                response_id=resp + "t",
                output_index=0,
                item=fc_item,
            )
            add(
                start + 140,
                "server",
                "response.done",
                response={"id": resp + "t", "status": "completed", "output": [fc_item], "usage": _usage(k)},
            )
            add(
                start + 300,
                "app",
                "tool_call",
                call_id=call,
                name="lookup_order",
                arguments={"order_id": f"A{k}"},
                output='{"status": "shipped"}',
                stub_kind="static",
                approval=None,
                started_ms=start + 140,
                duration_ms=160.0,
                error=None,
            )
            out = {
                "id": fco,
                "type": "function_call_output",
                "call_id": call,
                "output": '{"status": "shipped"}',
            }
            add(start + 305, "client", "conversation.item.create", item=out)
            add(start + 310, "server", "conversation.item.added", item=out, previous_item_id=fc)
            add(start + 315, "client", "response.create")
            previous = fco
            start += 320
        assistant = f"item_a{k:05d}"
        add(start, "server", "response.created", response={"id": resp, "status": "in_progress"})
        a_item = {
            "id": assistant,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        add(start + 10, "server", "response.output_item.added", response_id=resp, output_index=0, item=a_item)
        add(start + 15, "server", "conversation.item.added", item=a_item, previous_item_id=previous)
        ids = {"response_id": resp, "item_id": assistant, "output_index": 0, "content_index": 0}
        words = [WORDS[(k + i) % len(WORDS)] for i in range(12)]
        for i, word in enumerate(words):
            add(
                start + 200 + i * 30,
                "server",
                "response.output_audio_transcript.delta",
                delta=word + " ",
                **ids,
            )
        for i in range(40):
            add(
                start + 250 + i * 100,
                "server",
                "response.output_audio.delta",
                delta=_ref("output", out_ms),
                **ids,
            )
            out_ms += 100.0
        text = " ".join(words)
        end = start + 4300
        add(end, "server", "response.output_audio.done", **ids)
        add(end, "server", "response.output_audio_transcript.done", transcript=text, **ids)
        done = {**a_item, "status": "completed", "content": [{"type": "output_audio", "transcript": text}]}
        add(end + 5, "server", "conversation.item.done", item=done, previous_item_id=previous)
        add(
            end + 10,
            "server",
            "response.done",
            response={"id": resp, "status": "completed", "output": [done], "usage": _usage(k)},
        )
        add(
            end + 400,
            "server",
            "conversation.item.input_audio_transcription.completed",
            item_id=user,
            content_index=0,
            transcript=f"where is my order number {k}",
        )
        previous = assistant
    lines.sort(key=lambda pair: pair[0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(
        json.dumps({"voicelab": "bench", "model": "gpt-realtime", "agent": "desk"})
    )
    with (folder / "events.jsonl").open("w") as fh:
        for _, record in lines:
            fh.write(json.dumps(record) + "\n")
    return len(lines)


def _usage(k: int) -> dict[str, Any]:
    return {
        "total_tokens": 300 + k,
        "input_tokens": 200 + k,
        "output_tokens": 100,
        "input_token_details": {"text_tokens": 100, "audio_tokens": 100 + k, "cached_tokens": 64},
        "output_token_details": {"text_tokens": 20, "audio_tokens": 80},
    }


def json_parse(folder: Path) -> list[dict[str, Any]]:
    with (folder / "events.jsonl").open("rb") as fh:
        return [json.loads(line) for line in fh]


def all_tables(folder: Path) -> None:
    rec = load_recording(folder)  # read once (the synthetic folder has no audio tracks), then every table
    for build in (tables.history, tables.turns, tables.tool_calls, tables.guardrail_trips, tables.usage):
        build(rec)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def emit(metric: str, value: float, unit: str, **extra: Any) -> None:
    print(
        json.dumps(
            {"bench": "tables_one_hour", "metric": metric, "value": round(value, 4), "unit": unit, **extra}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=360)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hour"
        events = synthesize(folder, args.turns)
        size = (folder / "events.jsonl").stat().st_size / 2**20
        emit("events", events, "count", turns=args.turns, file_mib=round(size, 1))
        parse_s = best_time(lambda: json_parse(folder), args.repeat)
        emit("json_parse_time", parse_s, "s")
        all_s = best_time(lambda: all_tables(folder), args.repeat)
        emit(
            "load_and_all_tables_time",
            all_s,
            "s",
            baseline="json_parse_time",
            ratio=round(all_s / parse_s, 2),
        )
        for name in ("history", "turns", "tool_calls", "usage"):
            build = getattr(tables, name)
            rec = load_recording(folder)
            seconds = best_time(lambda build=build, rec=rec: build(rec), args.repeat)
            emit(
                f"{name}_time_from_loaded_events",
                seconds,
                "s",
                baseline="json_parse_time",
                ratio=round(seconds / parse_s, 2),
            )
        parse_mib = peak_mib(lambda: json_parse(folder))
        emit("json_parse_peak_memory", parse_mib, "MiB")
        all_mib = peak_mib(lambda: all_tables(folder))
        emit(
            "load_and_all_tables_peak_memory",
            all_mib,
            "MiB",
            baseline="json_parse_peak_memory",
            ratio=round(all_mib / parse_mib, 2),
        )
        frame = tables.turns(folder)
        emit("turn_rows", len(frame), "count")


if __name__ == "__main__":
    main()
