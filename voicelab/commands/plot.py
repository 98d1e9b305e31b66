"""`voicelab plot PATH -o OUT.png`: waveform, VAD probability and detected turns of an audio file, or the
session figure of a recording folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from voicelab.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


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
    parser.add_argument(
        "--engine", choices=("silero", "webrtc", "energy"), default="silero", help="VAD engine"
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="speech probability threshold (0-1)")
    parser.add_argument("--prefix-padding-ms", type=int, default=300, help="audio kept before speech starts")
    parser.add_argument("--silence-duration-ms", type=int, default=500, help="silence that ends a turn")
    parser.add_argument("--width", type=int, default=1600, help="image width in pixels")
    parser.add_argument("--height", type=int, default=600, help="image height in pixels")
    return parser


def run(args: argparse.Namespace) -> int:
    from voicelab.audio.io import read_audio
    from voicelab.audio.turns import TurnDetection, detect_turns
    from voicelab.plots import plot_session

    source = Path(args.path)
    if source.is_dir():
        return _plot_recording(source, args)
    output = Path(args.output) if args.output else source.with_suffix(".png")
    _check_output(output)
    config = TurnDetection(
        threshold=args.threshold,
        prefix_padding_ms=args.prefix_padding_ms,
        silence_duration_ms=args.silence_duration_ms,
    )
    audio = read_audio(source)
    analysis = detect_turns(audio, config, engine=args.engine)
    figure = plot_session(
        audio,
        turns=analysis,
        width_px=args.width,
        height_px=args.height,
        title=f"{source.name} ({analysis.track.engine} VAD)",
    )
    figure.savefig(output)
    print(
        f"wrote {output}: {len(analysis.turns)} turn(s), {audio.duration_ms / 1000:.1f} s, {args.engine} VAD"
    )
    return 0


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
    figure.savefig(output)
    print(f"wrote {output}: session figure of {folder}")
    return 0
