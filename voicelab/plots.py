"""Matplotlib figures of a session on one clock (x axis in seconds).

Every function returns a `matplotlib.figure.Figure` on the Agg canvas: nothing touches pyplot's global state
and nothing is shown. In Jupyter the returned figure displays itself; elsewhere call `fig.savefig(path)`.

Long audio is never plotted sample by sample: the waveform is a min/max envelope with one bin per pixel of
the figure's width, computed with a reshape (no copies), so one hour of 24 kHz audio plots in about a second.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from voicelab.audio.core import Audio
from voicelab.audio.io import read_audio
from voicelab.audio.turns import Turn, TurnAnalysis, TurnDetection, detect_turns
from voicelab.audio.vad import VadTrack
from voicelab.checks import checked, checked_class, number, text, whole
from voicelab.errors import ConfigError
from voicelab.recording import input_origin_ms

KIND_COLORS: dict[str, str] = {
    "response": "tab:green",
    "speech": "tab:blue",
    "turn": "tab:blue",
    "interruption": "tab:red",
    "audio_interrupted": "tab:red",
    "guardrail": "tab:orange",
    "guardrail_tripped": "tab:orange",
    "tool": "tab:purple",
    "tool_call": "tab:purple",
    "handoff": "tab:brown",
    "error": "crimson",
    "event": "0.35",
}
"""Default colour per span/mark kind; other kinds get a stable colour from the tab10 cycle."""

_EXTRA_COLORS = ("tab:cyan", "tab:olive", "tab:pink", "tab:gray", "tab:brown", "tab:purple")
TURN_COLOR = "tab:blue"
MAX_TURN_LABELS = 40
"""Turns get time labels only when there are at most this many (more labels would overlap)."""


def _check_time(value: Any, name: str, where: str) -> None:
    """A time in ms of a number type (its range, NaN included, is checked when plotted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{where}: {name}={value!r} must be a number of ms on the session clock, e.g. 1500")


def _check_color(color: Any, where: str) -> None:
    from matplotlib.colors import is_color_like

    if color is not None and not (isinstance(color, str) and is_color_like(color)):
        raise ConfigError(
            f"{where}: color={color!r} is not a matplotlib colour; use a name ('crimson'), '#rrggbb', "
            "'tab:blue', or None for the kind's colour"
        )


@checked_class
@dataclass
class Span:
    """An interval on the session clock, e.g. a response being played or a tool call running."""

    start_ms: float
    end_ms: float
    label: str
    kind: str = "response"
    color: str | None = None

    def __post_init__(self) -> None:
        _check_time(self.start_ms, "start_ms", "Span")
        _check_time(self.end_ms, "end_ms", "Span")
        text(self.label, "label", empty=True, where="Span")
        text(self.kind, "kind", example="response", where="Span")
        _check_color(self.color, "Span")


@checked_class
@dataclass
class Mark:
    """An instant on the session clock, e.g. an interruption or a guardrail trip."""

    t_ms: float
    label: str
    kind: str = "event"
    color: str | None = None

    def __post_init__(self) -> None:
        _check_time(self.t_ms, "t_ms", "Mark")
        text(self.label, "label", empty=True, where="Mark")
        text(self.kind, "kind", example="event", where="Mark")
        _check_color(self.color, "Mark")


LABEL_GAP_PX = 80  # a span label needs about this many pixels before the next one in its row


def kind_color(kind: str, color: str | None = None) -> str:
    """The colour to draw a span or mark of `kind` with (an explicit `color` wins)."""
    if color:
        return color
    if kind in KIND_COLORS:
        return KIND_COLORS[kind]
    return _EXTRA_COLORS[sum(kind.encode()) % len(_EXTRA_COLORS)]


def envelope(samples: np.ndarray, rate: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """A min/max envelope of `samples` with at most `bins` bins, as one zig-zag line.

    Returns `(t_seconds, values)` where each bin contributes two points at its centre time (its minimum, then
    its maximum), so the line has at most `2 * bins` points. A signal shorter than `2 * bins` samples is
    returned as is (one point per sample, at the sample's time).
    """
    number(rate, "rate", lo=0, lo_open=True, unit="Hz", example=24000, where="envelope")
    whole(bins, "bins", lo=1, hi=MAX_FIGURE_PX * 10, example=1600, where="envelope")
    n = int(samples.size)
    if n <= 2 * bins:
        return np.arange(n) / rate, np.asarray(samples, dtype=np.float32)
    per_bin = -(-n // bins)  # ceil: at most `bins` bins
    full = n // per_bin
    body = samples[: full * per_bin].reshape(full, per_bin)
    lows, highs = [body.min(axis=1)], [body.max(axis=1)]
    starts = np.arange(full) * per_bin
    centres = [starts + per_bin / 2]
    if full * per_bin < n:
        tail = samples[full * per_bin :]
        lows.append(tail.min(keepdims=True))
        highs.append(tail.max(keepdims=True))
        centres.append(np.array([full * per_bin + tail.size / 2]))
    low, high, centre = np.concatenate(lows), np.concatenate(highs), np.concatenate(centres)
    values = np.empty(2 * low.size, dtype=np.float32)
    values[0::2], values[1::2] = low, high
    return np.repeat(centre / rate, 2), values


def _vad_curve(track: VadTrack, bins: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The VAD line: steps at frame starts when short, else a min/max envelope per pixel."""
    probs = np.asarray(track.probs, dtype=np.float32)
    if probs.size <= 2 * bins:
        t = np.arange(probs.size + 1) * track.frame_ms / 1000.0
        values = np.append(probs, probs[-1:]) if probs.size else probs
        return t[: values.size], values, "steps-post"
    t, values = envelope(probs, 1000.0 / track.frame_ms, bins)
    return t, values, "default"


MAX_FIGURE_PX = 10_000  # per side: a 10000 x 10000 figure is already ~400 MB of pixels to render
MAX_DPI = 1_000


def _check_figure_size(width_px: int, height_px: int, dpi: int) -> None:
    for name, value, top in (
        ("width_px", width_px, MAX_FIGURE_PX),
        ("height_px", height_px, MAX_FIGURE_PX),
        ("dpi", dpi, MAX_DPI),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ConfigError(
                f"{name} must be a positive integer, got {value!r}; e.g. width_px=1600, dpi=100"
            )
        if value > top:
            raise ConfigError(f"{name}={value} is too large; use at most {top} (e.g. width_px=1600, dpi=100)")


def _turn_list(turns: TurnAnalysis | Sequence[Turn] | None) -> list[Turn]:
    if turns is None:
        return []
    if isinstance(turns, TurnAnalysis):
        return list(turns.turns)
    if not isinstance(turns, (list, tuple)):
        raise ConfigError(
            f"turns must be a TurnAnalysis or a list of Turn, got {type(turns).__name__}; "
            "use voicelab.audio.turns.detect_turns(audio)"
        )
    items = list(turns)
    for item in items:
        if not isinstance(item, Turn):
            raise ConfigError(
                f"turns must be a TurnAnalysis or a list of Turn, got an item {item!r}; "
                "use voicelab.audio.turns.detect_turns(audio)"
            )
    return items


def _check_spans_and_marks(spans: Sequence[Span], marks: Sequence[Mark]) -> None:
    for span in spans:
        if not isinstance(span, Span):
            raise ConfigError(
                f"spans must be Span values, got {span!r}; use voicelab.plots.Span(start_ms, ...)"
            )
        if not (np.isfinite(span.start_ms) and np.isfinite(span.end_ms)) or span.end_ms < span.start_ms:
            raise ConfigError(
                f"span {span.label!r} ends ({span.end_ms} ms) before it starts ({span.start_ms} ms)"
            )
    for mark in marks:
        if not isinstance(mark, Mark):
            raise ConfigError(
                f"marks must be Mark values, got {mark!r}; use voicelab.plots.Mark(t_ms, label)"
            )
        if not np.isfinite(mark.t_ms):
            raise ConfigError(f"mark {mark.label!r} has no finite time ({mark.t_ms}); pass t_ms in ms")


@checked
def new_figure(width_px: int = 1600, height_px: int = 600, dpi: int = 100) -> Figure:
    """An empty figure of the given pixel size on the Agg canvas (no pyplot)."""
    _check_figure_size(width_px, height_px, dpi)
    figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


@checked
def plot_session(
    audio: Audio | None = None,
    *,
    turns: TurnAnalysis | Sequence[Turn] | None = None,
    vad: VadTrack | None = None,
    threshold: float | None = None,
    spans: Sequence[Span] = (),
    marks: Sequence[Mark] = (),
    width_px: int = 1600,
    height_px: int = 600,
    dpi: int = 100,
    title: str | None = None,
) -> Figure:
    """Waveform, VAD probability, turns, spans and marks on one clock.

    - `audio`: drawn as a min/max envelope decimated to `width_px` bins.
    - `vad`: the speech probability on a second axes sharing x, with a line at `threshold`. When `turns` is a
      `TurnAnalysis`, its track and threshold are used unless `vad`/`threshold` are given.
    - `turns`: shaded on the waveform and VAD axes, labelled with their start/end in seconds.
    - `spans`: shaded bands in a lane below, one row per kind. `marks`: vertical lines across every axes.
    """
    _check_figure_size(width_px, height_px, dpi)
    if audio is not None and not isinstance(audio, Audio):
        raise ConfigError(
            f"audio must be a voicelab Audio, got {type(audio).__name__}; "
            "wrap it with Audio.from_array(data, rate)"
        )
    turn_list = _turn_list(turns)
    if isinstance(turns, TurnAnalysis):
        vad = vad if vad is not None else turns.track
        threshold = threshold if threshold is not None else turns.config.threshold
    if vad is not None and not isinstance(vad, VadTrack):
        raise ConfigError(f"vad must be a VadTrack, got {type(vad).__name__}; use frame_probabilities(audio)")
    if threshold is not None:
        number(threshold, "threshold", lo=0, hi=1, example=0.5, where="plot_session")
    text(title, "title", none=True, empty=True, where="plot_session")
    for name, value in (("spans", spans), ("marks", marks)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"plot_session: {name} must be a list, got {type(value).__name__}")
    spans, marks = list(spans), list(marks)
    _check_spans_and_marks(spans, marks)
    if audio is None and vad is None and not turn_list and not spans and not marks:
        raise ConfigError("nothing to plot; pass audio, turns, vad, spans or marks")

    kinds = list(dict.fromkeys(span.kind for span in spans))
    has_main = audio is not None or bool(turn_list) or (vad is None and not spans)
    ratios = (
        ([3] if has_main else [])
        + ([2] if vad is not None else [])
        + ([0.35 * len(kinds) + 0.4] if spans else [])
    )
    figure = new_figure(width_px, height_px, dpi)
    axes_list = list(np.atleast_1d(figure.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)))
    main_ax = axes_list.pop(0) if has_main else None
    vad_ax = axes_list.pop(0) if vad is not None else None
    lane_ax = axes_list.pop(0) if spans else None
    all_axes = [ax for ax in (main_ax, vad_ax, lane_ax) if ax is not None]

    end_s = _end_seconds(audio, vad, turn_list, spans, marks)
    if main_ax is not None:
        _draw_waveform(main_ax, audio, width_px)
    if vad_ax is not None and vad is not None:
        _draw_vad(vad_ax, vad, threshold, width_px)
    shaded = [ax for ax in (main_ax, vad_ax) if ax is not None]
    _draw_turns(shaded, turn_list)
    if lane_ax is not None:
        _draw_spans(lane_ax, spans, kinds, label_gap_s=LABEL_GAP_PX * end_s / width_px)
    _draw_marks(all_axes, marks)

    for ax in all_axes:
        ax.set_xlim(0.0, end_s)
        ax.grid(True, axis="x", alpha=0.3)
    all_axes[-1].set_xlabel("time (s)")
    if title:
        all_axes[0].set_title(title)
    return figure


def _end_seconds(
    audio: Audio | None, vad: VadTrack | None, turns: list[Turn], spans: list[Span], marks: list[Mark]
) -> float:
    ends_ms = [0.0]
    if audio is not None:
        ends_ms.append(audio.duration_ms)
    if vad is not None:
        ends_ms.append(len(vad.probs) * vad.frame_ms)
    ends_ms += (
        [turn.end_ms for turn in turns] + [span.end_ms for span in spans] + [mark.t_ms for mark in marks]
    )
    end = max(ends_ms) / 1000.0
    return end if end > 0 else 1.0


def _draw_waveform(ax: Axes, audio: Audio | None, width_px: int) -> None:
    if audio is not None and audio.samples.size:
        t, values = envelope(audio.samples, audio.rate, width_px)
        ax.plot(t, values, color="0.25", linewidth=0.6, label="waveform", gid="waveform")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("amplitude" if audio is not None else "turns")


def _draw_vad(ax: Axes, vad: VadTrack, threshold: float | None, width_px: int) -> None:
    t, values, drawstyle = _vad_curve(vad, width_px)
    ax.plot(
        t,
        values,
        color="tab:blue",
        linewidth=0.9,
        drawstyle=drawstyle,
        label=f"VAD ({vad.engine})",
        gid="vad",
    )
    if threshold is not None:
        ax.axhline(
            threshold,
            color="tab:red",
            linestyle="--",
            linewidth=0.9,
            label=f"threshold {threshold:g}",
            gid="threshold",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("speech prob.")
    ax.legend(loc="upper right", fontsize="small")


def _draw_turns(axes: list[Axes], turns: list[Turn]) -> None:
    """One shaded band per turn, full height, as a single collection per axes (cheap for thousands)."""
    if not turns:
        return
    bounds = np.array([(turn.start_ms, turn.end_ms) for turn in turns], dtype=np.float64) / 1000.0
    verts = np.zeros((len(turns), 4, 2))
    verts[:, 0, 0] = verts[:, 1, 0] = bounds[:, 0]
    verts[:, 2, 0] = verts[:, 3, 0] = bounds[:, 1]
    verts[:, 1, 1] = verts[:, 2, 1] = 1.0
    for ax in axes:
        bands = PolyCollection(
            verts,  # type: ignore[arg-type]
            transform=ax.get_xaxis_transform(),
            facecolors=TURN_COLOR,
            alpha=0.15,
            linewidths=0,
        )
        bands.set_gid("turns")
        ax.add_collection(bands, autolim=False)
    if axes and len(turns) <= MAX_TURN_LABELS:
        for index, (start, end) in enumerate(bounds):
            axes[0].text(
                start,
                0.98,
                f"{start:.2f}–{end:.2f} s",
                transform=axes[0].get_xaxis_transform(),
                fontsize="x-small",
                va="top",
                color=TURN_COLOR,
                gid=f"turn-label-{index}",
            )


def _draw_spans(ax: Axes, spans: list[Span], kinds: list[str], label_gap_s: float = 0.0) -> None:
    """Shaded spans, one row per kind. A label is skipped when it would start within `label_gap_s` of the
    previous label of its row (spans a few ms apart would print on top of each other)."""
    rows = len(kinds)
    free_from = dict.fromkeys(kinds, -math.inf)  # per row: where the next label may start
    for index, span in enumerate(spans):
        row = rows - 1 - kinds.index(span.kind)
        start, end = span.start_ms / 1000.0, span.end_ms / 1000.0
        color = kind_color(span.kind, span.color)
        ax.axvspan(
            start,
            end,
            ymin=(row + 0.1) / rows,
            ymax=(row + 0.9) / rows,
            color=color,
            alpha=0.45,
            gid=f"span-{index}",
        )
        if start < free_from[span.kind]:
            continue
        free_from[span.kind] = start + label_gap_s
        ax.text(
            start,
            (row + 0.5) / rows,
            f" {span.label}",
            transform=ax.get_xaxis_transform(),
            fontsize="x-small",
            va="center",
            clip_on=True,
        )
    ax.set_ylim(0, rows)
    ax.set_yticks([rows - 0.5 - i for i in range(rows)], kinds)
    ax.tick_params(axis="y", labelsize="small")
    ax.set_ylim(0, rows)


def _draw_marks(axes: list[Axes], marks: list[Mark]) -> None:
    for index, mark in enumerate(marks):
        t = mark.t_ms / 1000.0
        color = kind_color(mark.kind, mark.color)
        for ax in axes:
            ax.axvline(t, color=color, linewidth=1.0, linestyle="-", alpha=0.9, gid=f"mark-{index}")
        axes[0].text(
            t,
            1.0,
            f" {mark.label}",
            transform=axes[0].get_xaxis_transform(),
            rotation=90,
            fontsize="x-small",
            va="top",
            ha="left",
            color=color,
            gid=f"mark-label-{index}",
        )


@checked
def plot_file(
    path: str | os.PathLike[str],
    engine: str = "silero",
    config: TurnDetection | None = None,
    **plot_options: object,
) -> Figure:
    """Read an audio file, detect its turns with `engine` and `config`, and plot it all."""
    audio = read_audio(path)
    analysis = detect_turns(audio, config or TurnDetection(), engine=engine)
    options: dict[str, object] = {"title": f"{Path(path).name} ({analysis.track.engine} VAD)", **plot_options}
    return plot_session(audio, turns=analysis, **options)  # type: ignore[arg-type]


__all__ = [
    "KIND_COLORS",
    "Mark",
    "Span",
    "envelope",
    "kind_color",
    "new_figure",
    "plot_file",
    "plot_session",
]


ASSISTANT_COLOR = "#d95f02"


def recording_timeline(recording: Any) -> tuple[list[Turn], list[Span], list[Mark]]:
    """Server VAD turns, response and tool spans, interruptions and guardrail trips of a recording, all on
    the session clock (ms). `recording` is a `voicelab.recording.Recording` (anything with `.events`)."""
    events: list[dict[str, Any]] = list(recording.events)
    audio_origin = input_origin_ms(events) or 0.0
    turns: list[Turn] = []
    spans: list[Span] = []
    marks: list[Mark] = []
    started: dict[str, float] = {}
    speech_start: dict[str, dict[str, Any]] = {}
    for line in events:
        kind, body, t_ms = line.get("type"), line.get("event") or {}, float(line.get("t_ms", 0.0))
        if line.get("dir") == "server":
            if kind == "input_audio_buffer.speech_started":
                speech_start[str(body.get("item_id"))] = body
            elif kind == "input_audio_buffer.speech_stopped":
                begin = speech_start.pop(str(body.get("item_id")), None)
                if begin is not None:
                    start = audio_origin + float(begin.get("audio_start_ms", 0))
                    end = audio_origin + float(body.get("audio_end_ms", 0))
                    turns.append(Turn(start_ms=start, end_ms=end, speech_start_ms=start, speech_end_ms=end))  # type: ignore[arg-type]
            elif kind == "response.created":
                started[str(body.get("response", {}).get("id"))] = t_ms
            elif kind == "response.done":
                response = body.get("response", {})
                begin_ms = started.pop(str(response.get("id")), None)
                if begin_ms is not None:
                    status = str(response.get("status", ""))
                    label = "response" if status == "completed" else f"response ({status})"
                    spans.append(Span(begin_ms, max(t_ms, begin_ms + 1.0), label, kind="response"))
        elif line.get("dir") == "app":
            if kind == "tool_call":
                begin_ms = float(body.get("started_ms", t_ms))
                spans.append(
                    Span(
                        begin_ms,
                        begin_ms + max(1.0, float(body.get("duration_ms") or 0)),
                        str(body.get("name")),
                        kind="tool",
                    )
                )
            elif kind == "audio_interrupted":
                marks.append(
                    Mark(
                        t_ms,
                        f"interrupted at {float(body.get('played_ms') or 0):.0f} ms",
                        kind="interruption",
                    )
                )
            elif kind == "guardrail_tripped":
                marks.append(Mark(t_ms, f"guardrail {body.get('guardrail')}", kind="guardrail"))
            elif kind == "handoff":
                marks.append(Mark(t_ms, f"handoff to {body.get('to_agent')}", kind="handoff"))
    return turns, spans, marks


@checked
def plot_recording(
    recording: Any, *, width_px: int = 1600, height_px: int = 600, dpi: int = 100, title: str | None = None
) -> Figure:
    """The session figure of a recording: the caller's audio (input track) and the assistant's (output track)
    as two envelopes, server VAD turns, response and tool spans, interruptions and guardrail trips, all on
    the session clock. `recording` is a Recording or its folder."""
    if not hasattr(recording, "events"):
        from voicelab.recording import load_recording

        recording = load_recording(recording)
    turns, spans, marks = recording_timeline(recording)
    caller = recording.input if recording.input is not None and recording.input.samples.size else None
    figure = plot_session(
        caller,
        turns=turns,
        spans=spans,
        marks=marks,
        width_px=width_px,
        height_px=height_px,
        dpi=dpi,
        title=title,
    )
    output = recording.output
    if output is not None and output.samples.size:
        ax = figure.axes[0]
        t, values = envelope(output.samples, output.rate, width_px)
        ax.plot(t, values, color=ASSISTANT_COLOR, linewidth=0.6, label="assistant")
        ax.lines[0].set_label("caller")
        ax.legend(loc="lower right", fontsize=8)
        end_s = max(ax.get_xlim()[1], output.duration_ms / 1000.0)
        for axis in figure.axes:
            axis.set_xlim(0.0, end_s)
    return figure


def _mix(first: Audio | None, second: Audio | None) -> Audio | None:
    tracks = [a for a in (first, second) if a is not None and a.samples.size]
    if not tracks:
        return None
    rate = tracks[0].rate
    length = max(len(a.samples) for a in tracks)
    total = np.zeros(length, dtype=np.float32)
    for track in tracks:
        samples = track.samples if track.rate == rate else track.resample(rate).samples
        total[: len(samples)] += samples
    return Audio(np.clip(total, -1.0, 1.0), rate)
