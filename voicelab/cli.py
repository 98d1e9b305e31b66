"""The `voicelab` command. Each subcommand lives in `voicelab/commands/<name>.py` and exposes
`add_parser(subparsers)` and `run(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from voicelab.errors import VoicelabError

COMMANDS = ("demo", "serve", "vad", "plot", "lab", "replay", "export")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (the problem, then where to look), not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="voicelab", description="Prototype Realtime voice agents, online or offline.")
    from voicelab import __version__

    parser.add_argument("--version", action="version", version=f"voicelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"voicelab.commands.{name}")
        command = module.add_parser(sub)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (2 for bad input, with one line on stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args._run(args) or 0)
    except (VoicelabError, ValueError) as exc:
        print(f"voicelab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the command could not read or write
        where = f" {exc.filename!r}" if exc.filename else ""
        reason = exc.strerror or str(exc)
        fix = "check the path and its permissions"
        print(f"voicelab {args.command}: error: cannot use{where}: {reason}; {fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
