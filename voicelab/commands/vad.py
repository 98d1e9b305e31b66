"""`voicelab vad PATH`: the turns the Realtime `server_vad` would find in an audio file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from voicelab.commands.turn_options import add_turn_options, turn_detection_from


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "vad",
        help="detect user turns in an audio file with server_vad semantics",
        description="Detect user turns in an audio file the way the Realtime API's server_vad does.",
    )
    parser.add_argument("path", metavar="PATH", help="audio file (WAV, FLAC, OGG, MP3)")
    add_turn_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def run(args: argparse.Namespace) -> int:
    from voicelab.audio.io import read_audio
    from voicelab.audio.turns import detect_turns

    config = turn_detection_from(args)
    audio = read_audio(args.path)
    analysis = detect_turns(audio, config, args.engine)
    turns = [
        {
            "start_ms": t.start_ms,
            "end_ms": t.end_ms,
            "speech_start_ms": t.speech_start_ms,
            "speech_end_ms": t.speech_end_ms,
        }
        for t in analysis.turns
    ]
    duration_ms = round(audio.duration_ms, 3)
    if args.json:
        report = {"engine": args.engine, "rate": audio.rate, "duration_ms": duration_ms, "turns": turns}
        print(json.dumps(report))
        return 0
    print(
        f"{args.path}: {duration_ms / 1000:.2f} s at {audio.rate} Hz; engine {args.engine}, "
        f"threshold {config.threshold}, prefix padding {config.prefix_padding_ms} ms, "
        f"silence {config.silence_duration_ms} ms"
    )
    header = ("turn", "start_ms", "end_ms", "speech_start_ms", "speech_end_ms")
    print("  ".join(f"{h:>15}" if i else f"{h:>4}" for i, h in enumerate(header)))
    for n, t in enumerate(turns, 1):
        print(f"{n:>4}  " + "  ".join(f"{t[h]:>15}" for h in header[1:]))
    print(f"{len(turns)} turn{'s' if len(turns) != 1 else ''}")
    return 0
