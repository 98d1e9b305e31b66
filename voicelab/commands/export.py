"""`voicelab export`: an agent in the form it is deployed in (session.update JSON, Agents SDK code, ...)."""

from __future__ import annotations

import argparse
from typing import Any

from voicelab.export import FORMATS


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export an agent as session.update JSON, Agents SDK Python/TypeScript, an "
        "openai-realtime-agents module, Markdown or tools JSON",
        description=(
            "Export AGENT (module:name or file.py:name of a voicelab.Agent or a function returning one; or a "
            "recording folder, whose agent is rebuilt from meta.json) in FORMAT, to stdout or --output."
        ),
    )
    parser.add_argument("agent", help="module:name, file.py:name, or a recording folder")
    parser.add_argument("--format", "-f", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from voicelab.export import export
    from voicelab.replay import agent_from_recording, load_agent

    source = Path(args.agent)
    agent = (
        agent_from_recording(source)
        if source.is_dir() or source.name == "events.jsonl"
        else load_agent(args.agent)
    )
    text = export(agent, args.format, args.output)
    if args.output is None:
        print(text, end="")
    else:
        print(f"wrote {args.output} ({args.format}, agent {agent.name!r})")
    return 0
