from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from voicelab.audio.core import Audio
from voicelab.audio.io import write_audio
from voicelab.audio.turns import Turn, TurnAnalysis, TurnDetection
from voicelab.audio.vad import VadTrack
from voicelab.errors import ConfigError
from voicelab.plots import Mark, Span, envelope, kind_color, plot_file, plot_recording, plot_session


def noise(seconds: float, rate: int = 24000, amplitude: float = 0.3) -> Audio:
    rng = np.random.default_rng(1)
    return Audio.from_array((amplitude * rng.uniform(-1, 1, round(seconds * rate))).astype(np.float32), rate)


def by_gid(figure: Figure, gid: str) -> list:
    return [artist for artist in figure.findobj(lambda a: a.get_gid() == gid)]


def x_extent(patch: Patch) -> tuple[float, float]:
    xs = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 0]
    return float(xs.min()), float(xs.max())


def y_extent(patch: Patch) -> tuple[float, float]:
    ys = patch.get_patch_transform().transform(patch.get_path().vertices)[:, 1]
    return float(ys.min()), float(ys.max())


TURNS = [Turn(1000, 2500, 1300, 2000), Turn(4200, 6000, 4500, 5500)]
TRACK = VadTrack("energy", 20, np.linspace(0, 1, 400, dtype=np.float32))


# -- envelope ------


def test_envelope_is_min_max_per_bin() -> None:
    samples = np.array([0, 1, -1, 2, 5, -3, 4, 0, 7, -7], dtype=np.float32)
    t, values = envelope(samples, 10, 2)  # 10 samples > 2 * 2: 2 bins of 5
    np.testing.assert_array_equal(values, [-1, 5, -7, 7])
    np.testing.assert_allclose(t, [0.25, 0.25, 0.75, 0.75])


def test_envelope_tail_bin_and_short_signals() -> None:
    samples = np.arange(11, dtype=np.float32)
    t, values = envelope(samples, 1, 2)  # ceil(11 / 2) = 6 per bin: bins of 6 and 5
    np.testing.assert_array_equal(values, [0, 5, 6, 10])
    np.testing.assert_allclose(t, [3, 3, 8.5, 8.5])
    t, values = envelope(samples[:4], 2, 2)
    np.testing.assert_array_equal(values, samples[:4])
    np.testing.assert_allclose(t, [0, 0.5, 1.0, 1.5])


def test_envelope_of_an_hour_fits_the_pixel_width() -> None:
    samples = np.zeros(24000 * 3600, dtype=np.float32)
    samples[24000 * 1800] = 0.75
    t, values = envelope(samples, 24000, 1600)
    assert values.size <= 2 * 1600
    assert values.max() == 0.75
    assert t[np.argmax(values)] == pytest.approx(1800, abs=3600 / 1600)


# -- plot_session ------


def test_figure_size_and_type() -> None:
    figure = plot_session(noise(1.0), width_px=800, height_px=300, dpi=50)
    assert isinstance(figure, Figure)
    assert tuple(figure.get_size_inches() * figure.dpi) == (800, 300)


def test_saved_png_has_the_pixel_size(tmp_path: Path) -> None:
    plot_session(noise(1.0), turns=TURNS, width_px=640, height_px=240).savefig(tmp_path / "p.png")
    header = (tmp_path / "p.png").read_bytes()[16:24]
    assert int.from_bytes(header[:4], "big") == 640
    assert int.from_bytes(header[4:], "big") == 240


def test_waveform_line_is_decimated_for_long_audio() -> None:
    audio = noise(120.0)
    figure = plot_session(audio, width_px=800)
    (line,) = by_gid(figure, "waveform")
    assert isinstance(line, Line2D)
    assert len(line.get_xdata()) <= 2 * 800
    assert max(line.get_ydata()) == audio.samples.max()
    assert min(line.get_ydata()) == audio.samples.min()
    assert figure.axes[0].get_xlim() == (0.0, 120.0)


def test_short_audio_is_drawn_sample_by_sample() -> None:
    audio = Audio.from_array(np.array([0.0, 0.5, -0.5, 0.25], dtype=np.float32), 4)
    (line,) = by_gid(plot_session(audio), "waveform")
    np.testing.assert_array_equal(line.get_xdata(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(line.get_ydata(), [0.0, 0.5, -0.5, 0.25])


def turn_bands(figure: Figure) -> list[list[tuple[float, float]]]:
    """x extents (s) of the turn bands, per axes that has them."""
    return [
        [(float(p.vertices[:, 0].min()), float(p.vertices[:, 0].max())) for p in bands.get_paths()]
        for bands in by_gid(figure, "turns")
    ]


def test_turns_are_shaded_at_their_times_on_both_axes() -> None:
    figure = plot_session(noise(8.0), turns=TURNS, vad=TRACK)
    bands = by_gid(figure, "turns")
    assert {b.axes for b in bands} == set(figure.axes)
    expected = [(turn.start_ms / 1000, turn.end_ms / 1000) for turn in TURNS]
    assert turn_bands(figure) == [expected, expected]
    for band in bands:  # full height: y in axes coordinates
        for path in band.get_paths():
            assert (path.vertices[:, 1].min(), path.vertices[:, 1].max()) == (0.0, 1.0)
        assert band.get_transform() == band.axes.get_xaxis_transform()
    for index, turn in enumerate(TURNS):
        (label,) = by_gid(figure, f"turn-label-{index}")
        assert label.get_position()[0] == turn.start_ms / 1000
    assert by_gid(figure, "turn-label-0")[0].get_text() == "1.00–2.50 s"
    assert by_gid(figure, "turn-label-1")[0].get_text() == "4.20–6.00 s"


def test_many_turns_are_shaded_without_labels() -> None:
    turns = [Turn(i * 1000, i * 1000 + 500, i * 1000, i * 1000 + 400) for i in range(100)]
    figure = plot_session(turns=turns)
    (bands,) = turn_bands(figure)
    assert bands == [(i, i + 0.5) for i in range(100)]
    assert by_gid(figure, "turn-label-0") == []


def test_vad_curve_and_threshold_line() -> None:
    figure = plot_session(noise(8.0), vad=TRACK, threshold=0.4)
    (curve,) = by_gid(figure, "vad")
    assert curve.get_drawstyle() == "steps-post"
    np.testing.assert_allclose(curve.get_xdata()[:3], [0.0, 0.02, 0.04])
    np.testing.assert_allclose(curve.get_ydata()[:400], TRACK.probs)
    assert curve.get_xdata()[-1] == pytest.approx(8.0)
    (line,) = by_gid(figure, "threshold")
    assert list(line.get_ydata()) == [0.4, 0.4]
    assert curve.axes is line.axes
    assert curve.axes is not by_gid(figure, "waveform")[0].axes
    assert curve.axes.get_shared_x_axes().joined(curve.axes, figure.axes[0])


def test_long_vad_track_is_decimated_too() -> None:
    track = VadTrack("silero", 32, np.random.default_rng(3).random(112_500).astype(np.float32))
    (curve,) = by_gid(plot_session(vad=track, width_px=500), "vad")
    assert len(curve.get_xdata()) <= 1000
    assert max(curve.get_ydata()) == track.probs.max()
    assert curve.get_xdata()[-1] == pytest.approx(3600, abs=3600 / 500)


def test_turn_analysis_brings_its_track_and_threshold() -> None:
    analysis = TurnAnalysis(TURNS, TRACK, TurnDetection(threshold=0.7))
    figure = plot_session(noise(8.0), turns=analysis)
    assert list(by_gid(figure, "threshold")[0].get_ydata()) == [0.7, 0.7]
    assert len(by_gid(figure, "vad")) == 1
    assert len(turn_bands(figure)) == 2
    explicit = plot_session(noise(8.0), turns=analysis, threshold=0.2)
    assert list(by_gid(explicit, "threshold")[0].get_ydata()) == [0.2, 0.2]


def test_marks_are_vertical_lines_on_every_axes() -> None:
    marks = [Mark(4200, "interrupted", "interruption"), Mark(6100.5, "guardrail", "guardrail", color="black")]
    figure = plot_session(noise(8.0), vad=TRACK, spans=[Span(3000, 4200, "r1")], marks=marks)
    for index, mark in enumerate(marks):
        lines = by_gid(figure, f"mark-{index}")
        assert len(lines) == 3  # waveform, VAD and span lane
        assert {line.axes for line in lines} == set(figure.axes)
        for line in lines:
            assert list(line.get_xdata()) == [mark.t_ms / 1000, mark.t_ms / 1000]
        (label,) = by_gid(figure, f"mark-label-{index}")
        assert label.get_text().strip() == mark.label
    assert by_gid(figure, "mark-0")[0].get_color() == kind_color("interruption")
    assert by_gid(figure, "mark-1")[0].get_color() == "black"


def test_spans_are_bands_in_a_lane_one_row_per_kind() -> None:
    spans = [Span(3000, 4500, "resp 1"), Span(4000, 4200, "lookup", "tool"), Span(8000, 9500, "resp 2")]
    figure = plot_session(noise(8.0), spans=spans)
    assert len(figure.axes) == 2
    lane = by_gid(figure, "span-0")[0].axes
    assert lane is figure.axes[1]
    assert [t.get_text() for t in lane.get_yticklabels()] == ["response", "tool"]
    extents = [x_extent(by_gid(figure, f"span-{i}")[0]) for i in range(3)]
    assert extents == [pytest.approx((3.0, 4.5)), pytest.approx((4.0, 4.2)), pytest.approx((8.0, 9.5))]
    response_row = y_extent(by_gid(figure, "span-0")[0])
    tool_row = y_extent(by_gid(figure, "span-1")[0])
    assert response_row == pytest.approx((0.55, 0.95))
    assert tool_row == pytest.approx((0.05, 0.45))
    assert figure.axes[0].get_xlim() == (0.0, 9.5)  # the clock covers the last span


def test_timeline_without_audio() -> None:
    figure = plot_session(turns=TURNS, marks=[Mark(500, "start")], title="turns only")
    assert len(figure.axes) == 1
    assert figure.axes[0].get_title() == "turns only"
    assert figure.axes[0].get_xlim() == (0.0, 6.0)
    assert by_gid(figure, "waveform") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to plot"),
        ({"width_px": 0}, "width_px"),
        ({"dpi": 1.5}, "dpi"),
        ({"vad": TRACK, "threshold": 1.5}, "threshold"),
        ({"spans": [Span(10, 5, "bad")]}, "ends"),
        ({"marks": [Mark(float("nan"), "x")]}, "finite"),
        ({"turns": [(0, 1, 0, 1)]}, "list of Turn"),
        ({"vad": np.zeros(4)}, "VadTrack"),
        ({"spans": [(0, 1, "x")]}, "Span"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plot_session(**kwargs)


def test_audio_must_be_audio() -> None:
    with pytest.raises(ConfigError, match=r"Audio\.from_array"):
        plot_session(np.zeros(100))  # type: ignore[arg-type]


def test_kind_colors_are_stable() -> None:
    assert kind_color("response") == "tab:green"
    assert kind_color("anything", "red") == "red"
    assert kind_color("custom") == kind_color("custom")


# -- plot_file ------


def bursts_file(path: Path) -> Path:
    """2 s silence, 1 s tone, 2 s silence, 1 s tone, 1 s silence at 16 kHz."""
    rate = 16000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    silence = np.zeros(2 * rate)
    data = np.concatenate([silence, tone, silence, tone, silence[:rate]]).astype(np.float32)
    write_audio(path, Audio.from_array(data, rate))
    return path


def test_plot_file_detects_and_draws_turns(tmp_path: Path) -> None:
    path = bursts_file(tmp_path / "bursts.wav")
    figure = plot_file(
        path, engine="energy", config=TurnDetection(prefix_padding_ms=0, silence_duration_ms=300)
    )
    assert figure.axes[0].get_title() == "bursts.wav (energy VAD)"
    main, vad = turn_bands(figure)
    assert main == vad
    assert len(main) == 2
    start0, end0 = main[0]
    assert start0 == pytest.approx(2.0, abs=0.05)
    assert end0 == pytest.approx(3.3, abs=0.05)
    assert list(by_gid(figure, "threshold")[0].get_ydata()) == [0.5, 0.5]


def test_plot_file_reports_bad_files(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(ValueError, match="cannot read"):
        plot_file(tmp_path / "x.wav", engine="energy")


def test_plots_never_touch_pyplot() -> None:
    code = (
        "import sys, numpy as np\n"
        "from voicelab.audio.core import Audio\n"
        "from voicelab.plots import plot_session\n"
        "plot_session(Audio.from_array(np.zeros(100, np.float32), 100)).savefig(sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "/dev/null"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_span_labels_a_few_ms_apart_do_not_overprint() -> None:
    from voicelab.plots import Span, plot_session

    spans = [
        Span(1000, 1005, "call", kind="response"),
        Span(1008, 4000, "answer", kind="response"),
        Span(6000, 7000, "later", kind="response"),
        Span(1002, 1300, "tool", kind="tool"),  # another row: its own label
    ]
    figure = plot_session(spans=spans, width_px=800)
    texts = [t.get_text().strip() for ax in figure.axes for t in ax.texts]
    assert texts.count("call") == 1 and "answer" not in texts
    assert "later" in texts and "tool" in texts
    lane = figure.axes[-1]
    assert len(lane.patches) == 4  # every span is still drawn


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Span("a", 1, "x"), ("start_ms", "number")),
        (lambda: Mark(True, "x"), ("t_ms",)),
        (lambda: Span(0, 1, 5), ("label", "str")),
        (lambda: Mark(0, "x", color="notacolor"), ("color", "matplotlib colour")),
        (lambda: plot_session(noise(1.0), turns=5), ("turns", "TurnAnalysis")),
        (lambda: plot_session(noise(1.0), marks=5), ("marks", "list")),
        (lambda: plot_session(noise(1.0), title=5), ("title", "str")),
        (lambda: plot_session(noise(1.0), vad=TRACK, threshold=float("nan")), ("threshold", "NaN")),
        (lambda: plot_recording(5), ("recording", "path")),
        (lambda: plot_recording("/nonexistent/recording"), ("does not exist",)),
        (lambda: envelope(np.zeros(10), 0, 10), ("rate",)),
        (lambda: envelope(np.zeros(10), 100, 0), ("bins",)),
    ],
)
def test_plot_arguments_of_the_wrong_kind(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))
