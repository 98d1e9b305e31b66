"""`voicelab plot PATH -o OUT.png`: waveform, VAD probability and detected turns of an audio file, or the
session figure of a recording folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from voicelab.commands.turn_options import add_turn_options, turn_detection_from
from voicelab.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
MAX_FIGURE_PX = 10_000  # plots.MAX_FIGURE_PX (not imported: matplotlib loads only when a plot is drawn)
MIN_FIGURE_PX = 100


def pixels(text: str) -> int:
    """An argparse type: an image side in pixels, from MIN_FIGURE_PX to MAX_FIGURE_PX."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of pixels; give e.g. 1600"
        ) from None
    if not MIN_FIGURE_PX <= value <= MAX_FIGURE_PX:
        raise argparse.ArgumentTypeError(
            f"{text} is outside {MIN_FIGURE_PX}-{MAX_FIGURE_PX}; give a size in pixels, e.g. 1600"
        )
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "plot",
        help="plot an audio file's waveform, VAD probability and turns",
        description="Plot the waveform, VAD probability and server_vad turns of an audio file to an image.",
    )
    parser.add_argument(
        "path",
        metavar="PATH",
        help="audio file (WAV, FLAC, or anything soundfile reads), or a session recording folder",
    )
    parser.add_argument(
        "-o", "--output", metavar="OUT", help="image to write (.png, .svg or .pdf; default: PATH with .png)"
    )
    add_turn_options(parser)
    parser.add_argument(
        "--width",
        type=pixels,
        default=1600,
        help=f"image width in pixels, 100-{MAX_FIGURE_PX} (default 1600)",
    )
    parser.add_argument(
        "--height",
        type=pixels,
        default=600,
        help=f"image height in pixels, 100-{MAX_FIGURE_PX} (default 600)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from voicelab.audio.io import read_audio
    from voicelab.audio.turns import detect_turns
    from voicelab.plots import plot_session

    source = Path(args.path)
    if source.is_dir():
        return _plot_recording(source, args)
    output = Path(args.output) if args.output else source.with_suffix(".png")
    _check_output(output)
    config = turn_detection_from(args)
    audio = read_audio(source)
    analysis = detect_turns(audio, config, engine=args.engine)
    figure = plot_session(
        audio,
        turns=analysis,
        width_px=args.width,
        height_px=args.height,
        title=f"{source.name} ({analysis.track.engine} VAD)",
    )
    _save(figure, output)
    print(
        f"wrote {output}: {len(analysis.turns)} turn(s), {audio.duration_ms / 1000:.1f} s, {args.engine} VAD"
    )
    return 0


def _save(figure: Any, output: Path) -> None:
    try:
        figure.savefig(output)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {str(output)!r} ({exc.strerror or exc}); pass -o a path in a folder you can write"
        ) from exc


def _check_output(output: Path) -> None:
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"cannot write a {output.suffix or 'suffix-less'} image; name the output .png, .svg or .pdf"
        )
    if not output.parent.exists():
        raise ConfigError(f"output folder {str(output.parent)!r} does not exist; create it first")


def _plot_recording(folder: Path, args: argparse.Namespace) -> int:
    """A recording folder: caller and assistant audio, server VAD turns, responses, tools, interruptions."""
    from voicelab.plots import plot_recording
    from voicelab.recording import load_recording

    output = Path(args.output) if args.output else folder / "session.png"
    _check_output(output)
    recording = load_recording(folder)
    figure = plot_recording(recording, width_px=args.width, height_px=args.height, title=folder.name)
    _save(figure, output)
    print(f"wrote {output}: session figure of {folder}")
    return 0
