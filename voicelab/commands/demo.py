"""`voicelab demo`: the offline returns-desk session on the embedded server (no key, no network)."""

from __future__ import annotations

import argparse
from typing import Any

from voicelab.speech.corpus import CONVERSATIONS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run a scripted caller against a returns-desk agent on the embedded server",
        description="Start the embedded Realtime server, play a synthetic caller's turns through a "
        "session with server VAD, and write the recording, tables (CSV) and the session figure to --out.",
    )
    parser.add_argument("--out", default="voicelab-demo", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--conversation",
        default="returns",
        choices=sorted(CONVERSATIONS),
        help="caller (default: %(default)s)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="send the caller's audio and stream replies as fast as possible instead of in real time",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the output paths")
    return parser


def run(args: argparse.Namespace) -> int:
    from voicelab.demo import run_demo

    run_demo(
        args.out,
        conversation=args.conversation,
        pace="fast" if args.fast else "realtime",
        realtime=not args.fast,
        quiet=args.quiet,
    )
    return 0
