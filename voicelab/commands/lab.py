"""`voicelab lab [NOTEBOOK]`: open JupyterLab on the cockpit notebook (default: the bundled one)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from voicelab.commands.serve import port_number
from voicelab.errors import ConfigError

BUNDLED = "cockpit.ipynb"


def bundled_notebook() -> Path:
    """The cockpit notebook shipped in the package."""
    path = Path(str(resources.files("voicelab") / "data" / "notebooks" / BUNDLED))
    if not path.is_file():
        raise ConfigError(f"the bundled {BUNDLED} is missing from this voicelab install; reinstall voicelab.")
    return path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "lab",
        help="open JupyterLab on the cockpit notebook (talk to an agent from the browser)",
        description=(
            "Open JupyterLab on NOTEBOOK, or on ./cockpit.ipynb, copied from the bundled cockpit notebook "
            "when it does not exist yet (never overwritten). As root, --allow-root is added."
        ),
    )
    parser.add_argument(
        "notebook", nargs="?", default=None, help="notebook to open (default: ./cockpit.ipynb)"
    )
    parser.add_argument(
        "--port", type=port_number, default=0, help="JupyterLab port (default: its own choice)"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="prepare the notebook and print the command instead of running it",
    )
    return parser


def lab_command(notebook: Path, *, port: int = 0, no_browser: bool = False) -> list[str]:
    command = [sys.executable, "-m", "jupyter", "lab", str(notebook)]
    if port:
        command.append(f"--port={port}")
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def prepare(notebook: str | None) -> Path:
    if notebook is None:
        target = Path("cockpit.ipynb")
        if not target.exists():
            shutil.copyfile(bundled_notebook(), target)
        return target
    target = Path(notebook)
    if target.is_dir():
        raise ConfigError(
            f"{target} is a folder, not a notebook; give an .ipynb file in it, or run `voicelab lab` from it "
            "without one to get the cockpit notebook."
        )
    if not target.is_file():
        raise ConfigError(
            f"notebook {target} does not exist; give an .ipynb file, or run `voicelab lab` without one to "
            "get the cockpit notebook."
        )
    if target.suffix != ".ipynb":
        raise ConfigError(f"{target} is not a notebook (.ipynb); give a Jupyter notebook file.")
    return target


def run(args: argparse.Namespace) -> int:
    target = prepare(args.notebook)
    command = lab_command(target, port=args.port, no_browser=args.no_browser)
    if args.dry_run:
        print(" ".join(command))
        return 0
    if shutil.which("jupyter") is None and not _has_jupyterlab():
        raise ConfigError(
            "JupyterLab is not installed here; pip install jupyterlab (voicelab depends on it)."
        )
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def _has_jupyterlab() -> bool:
    import importlib.util

    return importlib.util.find_spec("jupyterlab") is not None
