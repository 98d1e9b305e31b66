"""The VAD and `server_vad` options shared by `voicelab vad` and `voicelab plot`."""

from __future__ import annotations

import argparse
from typing import Any

from voicelab.audio.vad import ENGINES


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1 (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give a value from 0 to 1, e.g. 0.5"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0-1; give a value from 0 to 1, e.g. 0.5")
    return value


MAX_MS = 600_000  # ten minutes: longer paddings or silences mean nothing for a turn


def milliseconds(text: str) -> int:
    """An argparse type: a whole number of milliseconds from 0 to MAX_MS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of ms; give e.g. 500") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a whole number of ms >= 0, e.g. 500")
    if value > MAX_MS:
        raise argparse.ArgumentTypeError(f"{text} is too long; give at most {MAX_MS} ms, e.g. 500")
    return value


def add_turn_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="silero", help="VAD engine (default: silero)")
    parser.add_argument(
        "--threshold", type=probability, default=0.5, help="activation threshold 0-1 (default 0.5)"
    )
    parser.add_argument(
        "--prefix-padding-ms",
        type=milliseconds,
        default=300,
        help="audio kept before speech, ms (default 300)",
    )
    parser.add_argument(
        "--silence-duration-ms",
        type=milliseconds,
        default=500,
        help="silence that ends a turn, ms (default 500)",
    )
    parser.add_argument(
        "--no-refine-offset",
        dest="refine_offset",
        action="store_false",
        help="report speech ends where the model's probability falls, without moving them back to where "
        "the level reaches the noise floor",
    )


def turn_detection_from(args: argparse.Namespace) -> Any:
    from voicelab.audio.turns import TurnDetection

    return TurnDetection(
        threshold=args.threshold,
        prefix_padding_ms=args.prefix_padding_ms,
        silence_duration_ms=args.silence_duration_ms,
        refine_offset=args.refine_offset,
    )
