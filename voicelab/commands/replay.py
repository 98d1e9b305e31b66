"""`voicelab replay`: re-run a recorded call's caller turns against another agent or settings, and compare."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "replay",
        help="re-run a recorded call's caller turns against an agent and compare the two calls",
        description=(
            "Cut the caller's turns out of RECORDING, speak them to an agent (the recording's own, rebuilt "
            "from meta.json with its tools answered by their recorded outputs, or --agent) on the embedded "
            "server (deterministic) or at --url, and print the two calls side by side."
        ),
    )
    parser.add_argument("recording", help="a recording folder (or its events.jsonl)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--script",
        default="returns_desk",
        help="embedded server script file or bundled name (default: %(default)s)",
    )
    target.add_argument("--url", default=None, help="a Realtime WebSocket URL instead of the embedded server")
    parser.add_argument(
        "--agent", default=None, help="module:name or file.py:name of a voicelab.Agent (or a factory)"
    )
    parser.add_argument(
        "--prompt", default=None, help="a Markdown file whose text replaces the agent's instructions"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="change a session setting of the agent (repeatable), e.g. --set voice='\"echo\"' or "
        '--set \'turn_detection={"type": "server_vad", "silence_duration_ms": 300}\'',
    )
    parser.add_argument(
        "--out", default=None, help="folder for the replay's recording (default: replays/<name>)"
    )
    parser.add_argument("--realtime", action="store_true", help="speak the caller's turns in real time")
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from voicelab.replay import agent_from_recording, changed_agent, load_agent, replay

    agent = load_agent(args.agent) if args.agent else None
    if args.prompt or args.settings:
        base = agent if agent is not None else agent_from_recording(args.recording)
        prompt = Path(args.prompt).read_text(encoding="utf-8") if args.prompt else None
        agent = changed_agent(base, prompt, args.settings)
    result = asyncio.run(
        replay(
            args.recording, agent, script=args.script, url=args.url, out_dir=args.out, realtime=args.realtime
        )
    )
    print(f"original: {result.original}\nreplay:   {result.replay}\n")
    print(result.compare.T.to_string())
    print()
    for row in result.turns.itertuples():
        print(f"turn {row.turn}: caller: {row.caller}")
        for side in ("original", "replay"):
            said = getattr(row, side)
            tools = getattr(row, f"{side}_tools")
            extra = f"  [tools: {tools}]" if isinstance(tools, str) and tools else ""
            print(f"  {side:8}: {said if isinstance(said, str) else '-'}{extra}")
    same = int(result.turns["same"].sum())
    print(f"\n{same} of {len(result.turns)} turns answered the same.")
    return 0
