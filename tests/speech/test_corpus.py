import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from voicelab.errors import ConfigError
from voicelab.speech.corpus import (
    CONVERSATIONS,
    TRIM_RATIO,
    Segment,
    make_conversation,
    make_corpus,
    measure_snr_db,
    speech_mask,
    trim_bounds,
)

RATE = 24000


def _index(ms: float) -> int:
    return round(ms * RATE / 1000)


@pytest.fixture(scope="module")
def returns_clean():
    return make_conversation(CONVERSATIONS["returns"], voice="ash", speed=1.0, seed=7)


def test_caller_lines_are_the_scripted_ones():
    assert CONVERSATIONS["returns"][1] == "The order number is four five six seven."
    assert CONVERSATIONS["spelling"][1] == "My last name is Smith. S M I T H."
    assert CONVERSATIONS["human"] == (
        "I want to speak to a human.",
        "Yes, please transfer me to a person.",
        "Thank you.",
    )


def test_segments_sit_exactly_where_the_speech_is(returns_clean):
    samples = returns_clean.audio.samples
    segments = returns_clean.segments
    assert returns_clean.audio.rate == RATE
    assert [s.text for s in segments] == list(CONVERSATIONS["returns"])
    mask = speech_mask(samples.size, segments)
    assert not np.any(samples[~mask])  # clean: outside the labels is digital silence
    for seg in segments:
        start, end = _index(seg.start_ms), _index(seg.end_ms)
        assert start * 1000 / RATE == pytest.approx(seg.start_ms, abs=1e-9)
        speech = samples[start:end]
        threshold = TRIM_RATIO * np.abs(speech).max()
        assert abs(speech[0]) >= threshold and abs(speech[-1]) >= threshold
        assert samples[start - 1] == 0 and samples[end] == 0
        assert trim_bounds(speech) == (0, speech.size)


def test_silences_are_drawn_from_the_gap_range(returns_clean):
    segments = returns_clean.segments
    total_ms = returns_clean.audio.duration_ms
    silences = [segments[0].start_ms]
    silences += [b.start_ms - a.end_ms for a, b in itertools.pairwise(segments)]
    silences.append(total_ms - segments[-1].end_ms)
    assert len(silences) == 5
    assert all(1200 - 0.05 <= s <= 2500 + 0.05 for s in silences)
    assert len({round(s) for s in silences}) == 5


def test_explicit_gap_list_is_exact():
    labelled = make_conversation(["Thank you.", "Goodbye."], gap_ms=[500, 1000, 250], voice="echo")
    first, second = labelled.segments
    assert first.start_ms == 500.0
    assert second.start_ms - first.end_ms == pytest.approx(1000.0, abs=1000 / RATE)
    assert labelled.audio.duration_ms - second.end_ms == pytest.approx(250.0, abs=1e-6)


@pytest.mark.parametrize("noise", ["white", "pink"])
@pytest.mark.parametrize("snr", [20, 10, 5, 0])
def test_measured_snr_matches_request(noise, snr):
    lines = CONVERSATIONS["human"]
    clean = make_conversation(lines, voice="sage", seed=11)
    noisy = make_conversation(lines, voice="sage", seed=11, snr_db=snr, noise=noise)
    assert noisy.segments == clean.segments
    measured = measure_snr_db(clean.audio.samples, noisy.audio.samples, noisy.segments)
    assert measured == pytest.approx(snr, abs=0.5)
    assert np.abs(noisy.audio.samples).max() <= 0.99 + 1e-6
    # the noise fills the silences too
    mask = speech_mask(noisy.audio.samples.size, noisy.segments)
    assert np.std(noisy.audio.samples[~mask]) > 0


def test_pink_noise_has_more_low_than_high_frequency_power():
    noisy = make_conversation(["Thank you."], snr_db=0, noise="pink", seed=2, gap_ms=[2000, 2000])
    lead = noisy.audio.samples[: RATE * 2].astype(np.float64)
    power = np.abs(np.fft.rfft(lead)) ** 2
    freqs = np.fft.rfftfreq(lead.size, 1 / RATE)
    low = power[(freqs > 50) & (freqs < 500)].mean()
    high = power[(freqs > 5000) & (freqs < 10000)].mean()
    assert low > 10 * high


def test_same_seed_same_audio_other_seed_other_gaps():
    lines = CONVERSATIONS["spelling"]
    a = make_conversation(lines, voice="verse", seed=5, snr_db=10)
    b = make_conversation(lines, voice="verse", seed=5, snr_db=10)
    c = make_conversation(lines, voice="verse", seed=6, snr_db=10)
    assert np.array_equal(a.audio.samples, b.audio.samples) and a.segments == b.segments
    assert a.segments != c.segments


def test_make_corpus_is_deterministic_and_matches_its_manifest(tmp_path):
    kwargs = {"snrs": (None, 10), "voices": ("alloy", "cedar"), "speeds": (1.0, 1.2), "n": 3, "seed": 4}
    first = make_corpus(tmp_path / "a", **kwargs)
    second = make_corpus(tmp_path / "b", **kwargs)
    assert first == second
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == first
    assert first["rate"] == RATE
    assert len(first["files"]) == 6
    assert [f["name"] for f in first["files"]] == [
        "returns",
        "returns",
        "spelling",
        "spelling",
        "human",
        "human",
    ]
    assert [f["voice"] for f in first["files"][::2]] == ["alloy", "cedar", "alloy"]
    assert [f["snr_db"] for f in first["files"][:2]] == [None, 10]
    for entry in first["files"]:
        assert set(entry) == {"path", "kind", "name", "voice", "speed", "snr_db", "noise", "seed", "segments"}
        assert entry["kind"] == "conversation"
        data_a, rate = sf.read(tmp_path / "a" / entry["path"], dtype="float32")
        data_b, _ = sf.read(tmp_path / "b" / entry["path"], dtype="float32")
        assert rate == RATE and np.array_equal(data_a, data_b)
        assert [s["text"] for s in entry["segments"]] == list(CONVERSATIONS[entry["name"]])
        if entry["snr_db"] is None:  # labels still exact after 16-bit FLAC
            segs = entry["segments"]
            assert data_a[_index(segs[0]["start_ms"]) - 1] == 0 and data_a[_index(segs[0]["start_ms"])] != 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise": "brown"}, "unknown noise"),
        ({"gap_ms": [100, 200]}, "needs 3"),
        ({"gap_ms": (500, 100)}, "invalid"),
        ({"voice": "robot"}, "unknown voice"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_conversation(["Hello.", "Bye."], **kwargs)


def test_empty_lines_are_an_error():
    with pytest.raises(ConfigError, match="non-empty list"):
        make_conversation([])


def _committed_fixtures():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "fixtures"
    spec = importlib.util.spec_from_file_location("fixtures_generate", root / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return root, module


def test_committed_fixtures_match_a_fresh_generation():
    root, generate = _committed_fixtures()
    assert generate.check(root) == []


def test_committed_fixture_labels_match_the_audio():
    root, _ = _committed_fixtures()
    manifest = json.loads((root / "manifest.json").read_text())
    kinds = [(f["kind"], f["snr_db"]) for f in manifest["files"]]
    assert kinds.count(("conversation", None)) == 3 and kinds.count(("conversation", 10)) == 3
    assert kinds.count(("utterance", None)) == 3
    clean = {}
    for entry in manifest["files"]:
        data, rate = sf.read(root / entry["path"], dtype="float32")
        assert rate == RATE
        if entry["kind"] == "conversation":
            assert [s["text"] for s in entry["segments"]] == list(CONVERSATIONS[entry["name"]])
        if entry["snr_db"] is None:
            mask = np.zeros(data.size, bool)
            for seg in entry["segments"]:
                start, end = _index(seg["start_ms"]), _index(seg["end_ms"])
                mask[start:end] = True
                assert data[start] != 0 and data[end - 1] != 0
            assert not np.any(data[~mask])
            clean[entry["name"]] = data
        else:
            segments = [Segment(**s) for s in entry["segments"]]
            measured = measure_snr_db(clean[entry["name"]], data, segments)
            assert measured == pytest.approx(entry["snr_db"], abs=0.5)
