"""server_vad turn detection: exact ms on synthetic probabilities, streaming == offline on real audio."""

from __future__ import annotations

import numpy as np
import pytest

from voicelab.audio.core import Audio
from voicelab.audio.turns import (
    SpeechStarted,
    SpeechStopped,
    Turn,
    TurnDetection,
    TurnDetector,
    detect_turns,
    turns_from_events,
)
from voicelab.audio.vad import EnergyEngine, FrameScorer, VadEngine, VadTrack
from voicelab.errors import ConfigError


def track(*runs: tuple[float, int], frame_ms: int = 32) -> VadTrack:
    """A VadTrack from (probability, frame count) runs."""
    probs = np.concatenate([np.full(n, p, dtype=np.float32) for p, n in runs])
    return VadTrack("synthetic", frame_ms, probs)


def turns(t: VadTrack, **config: float) -> list[Turn]:
    return detect_turns(t, TurnDetection(**config)).turns  # type: ignore[arg-type]


def test_one_turn_by_hand() -> None:
    # 0 for 31 frames (992 ms), 1 for 63 frames (to 3008 ms), 0 after.
    t = track((0, 31), (1, 63), (0, 40))
    assert turns(t) == [Turn(start_ms=692, end_ms=3508, speech_start_ms=992, speech_end_ms=3008)]
    assert turns(t, prefix_padding_ms=100, silence_duration_ms=200) == [Turn(892, 3208, 992, 3008)]
    assert turns(t, prefix_padding_ms=0, silence_duration_ms=0) == [Turn(992, 3008, 992, 3008)]


def test_prefix_padding_clamps_at_zero() -> None:
    assert turns(track((0, 3), (1, 10), (0, 20))) == [Turn(0, 416 + 500, 96, 416)]


def test_short_gap_does_not_split_a_turn() -> None:
    # gap of 10 frames = 320 ms < 500 ms
    t = track((0, 10), (1, 20), (0, 10), (1, 20), (0, 30))
    assert turns(t) == [Turn(20, 2420, 320, 1920)]
    # the same gap splits with silence_duration_ms=300
    assert turns(t, silence_duration_ms=300) == [Turn(20, 1260, 320, 960), Turn(1260, 2220, 1280, 1920)]


def test_gap_of_silence_duration_splits_and_padding_stays_after_the_previous_turn() -> None:
    # gap of 16 frames = 512 ms >= 500 ms: the turn stops at 960 + 500 ms, in frame 45 (1440-1472 ms).
    t = track((0, 10), (1, 20), (0, 16), (1, 20), (0, 30))
    first, second = turns(t)
    assert first == Turn(20, 1460, 320, 960)
    # onset 1472 - 300 = 1172 would reach into the first turn: the padding starts at its end, 1460.
    assert second == Turn(1460, 2612, 1472, 2112)


def test_long_gap_gets_full_padding() -> None:
    t = track((0, 10), (1, 20), (0, 40), (1, 20), (0, 30))
    assert turns(t) == [Turn(20, 1460, 320, 960), Turn(1940, 3380, 2240, 2880)]


def test_threshold_is_inclusive() -> None:
    t = track((0.2, 10), (0.5, 10), (0.49, 40))
    assert turns(t, threshold=0.5) == [Turn(20, 1140, 320, 640)]
    assert turns(t, threshold=0.51) == []
    assert turns(t, threshold=0.2) == [Turn(0, 1920, 0, 1920)]


def test_turn_open_at_the_end_stops_at_the_stream_end() -> None:
    assert turns(track((0, 10), (1, 20))) == [Turn(20, 960, 320, 960)]
    # 5 trailing silent frames (160 ms < 500 ms): the audio ends at 1120 ms
    assert turns(track((0, 10), (1, 20), (0, 5))) == [Turn(20, 1120, 320, 960)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": -0.1},
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"threshold": "high"},
        {"prefix_padding_ms": -1},
        {"silence_duration_ms": -5},
        {"silence_duration_ms": 2.5},
    ],
)
def test_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TurnDetection(**kwargs)


def test_events_pair_into_turns() -> None:
    events = [SpeechStarted(0, 100), SpeechStopped(900, 400), SpeechStarted(1000, 1300)]
    assert turns_from_events(events) == [Turn(0, 900, 100, 400)]


# --- streaming detector on audio -------------------------------------------------------------------


def tone_bursts(rate: int = 16000) -> np.ndarray:
    """silence 1 s, tone 1 s, silence 1 s, tone 0.5 s, silence 1 s."""
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    zeros = np.zeros(rate, dtype=np.float32)
    return np.concatenate([zeros, tone, zeros, tone[: rate // 2], zeros])


def test_streaming_events_on_tone_bursts_with_exact_ms() -> None:
    engine = EnergyEngine(noise_floor_db=-60.0)
    detector = TurnDetector(TurnDetection(), engine=engine, input_rate=16000)
    samples = tone_bursts()
    events_at: list[tuple[int, object]] = []
    for i in range(0, len(samples), 160):  # 10 ms chunks
        for event in detector.push(samples[i : i + 160]):
            events_at.append((detector.now_ms, event))
    events_at += [(detector.now_ms, e) for e in detector.flush()]
    assert events_at == [
        (1020, SpeechStarted(audio_start_ms=700, speech_start_ms=1000)),
        (2500, SpeechStopped(audio_end_ms=2500, speech_end_ms=2000)),
        (3020, SpeechStarted(audio_start_ms=2700, speech_start_ms=3000)),
        (4000, SpeechStopped(audio_end_ms=4000, speech_end_ms=3500)),
    ]
    offline = detect_turns(Audio.from_array(samples, 16000), TurnDetection(), engine)
    assert offline.turns == [Turn(700, 2500, 1000, 2000), Turn(2700, 4000, 3000, 3500)]


@pytest.fixture(scope="module")
def conversation() -> Audio:
    from voicelab.speech import synthesize

    rng = np.random.default_rng(11)
    parts = [np.zeros(12000, dtype=np.float32)]
    for text in ("I need a taxi to the airport.", "Yes, at seven in the morning please."):
        parts += [synthesize(text).samples, np.zeros(36000, dtype=np.float32)]
    samples = np.concatenate(parts)
    return Audio.from_array(samples + rng.normal(0, 0.003, len(samples)).astype(np.float32), 24000)


@pytest.mark.parametrize("engine", ["silero", "webrtc", "energy"])
def test_streaming_turns_equal_offline_turns(conversation: Audio, engine: str) -> None:
    config = TurnDetection(silence_duration_ms=700)
    offline = detect_turns(conversation, config, engine)
    detector = TurnDetector(config, engine=engine, input_rate=24000)
    rng = np.random.default_rng(2)
    events = []
    i = 0
    while i < len(conversation.samples):
        size = int(rng.integers(1, 4801))
        events += detector.push(conversation.samples[i : i + size])
        i += size
    events += detector.flush()
    assert turns_from_events(events) == offline.turns
    assert offline.track.engine == engine
    assert offline.config == config


def test_silero_finds_both_sentences(conversation: Audio) -> None:
    analysis = detect_turns(conversation, TurnDetection(silence_duration_ms=700), "silero")
    assert len(analysis.turns) == 2
    first = analysis.turns[0]
    assert 400 <= first.speech_start_ms <= 700  # speech audio starts at 500 ms
    assert first.start_ms == first.speech_start_ms - 300


def test_clear_drops_the_open_turn_and_keeps_the_clock() -> None:
    engine = EnergyEngine(noise_floor_db=-60.0)
    detector = TurnDetector(engine=engine, input_rate=16000)
    samples = tone_bursts()
    events = detector.push(samples[:24000])  # into the first tone
    assert events == [SpeechStarted(700, 1000)]
    assert detector.speaking
    detector.clear()
    assert not detector.speaking
    assert detector.now_ms == 1500
    # the tone goes on: speech starts again at once, padded no earlier than the clear
    events = detector.push(samples[24000:])
    assert events[0] == SpeechStarted(audio_start_ms=1500, speech_start_ms=1500)


def test_config_can_change_between_pushes() -> None:
    detector = TurnDetector(engine=EnergyEngine(noise_floor_db=-60.0), input_rate=16000)
    detector.config = TurnDetection(prefix_padding_ms=0, silence_duration_ms=200)
    samples = tone_bursts()
    events = detector.push(samples) + detector.flush()
    assert turns_from_events(events) == [Turn(1000, 2200, 1000, 2000), Turn(3000, 3700, 3000, 3500)]


# --- offset refinement ------------------------------------------------------------------------------


class _HangoverScorer(FrameScorer):
    """1 for a frame with a loud sample and for ``hangover`` frames after it, else 0 (a model's lag)."""

    def __init__(self, hangover: int) -> None:
        self.hangover = hangover
        self.left = 0

    def score(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for frame in frames:
            self.left = self.hangover + 1 if np.abs(frame).max() > 0.1 else max(self.left - 1, 0)
            out.append(1.0 if self.left else 0.0)
        return np.array(out, dtype=np.float32)


class HangoverEngine(VadEngine):
    name = "hangover"
    frame_ms = 32

    def __init__(self, hangover: int) -> None:
        self.hangover = hangover

    def scorer(self) -> FrameScorer:
        return _HangoverScorer(self.hangover)


def burst_in_noise(floor: float | None = 0.001, rate: int = 16000) -> np.ndarray:
    """White noise (sigma ``floor``, about -57 dBFS; None: digital zero) with a 440 Hz tone at 0.5 from
    1024 ms to 2000 ms (the middle of a 32 ms frame, a boundary of its 8 ms blocks), 3 s in all."""
    rng = np.random.default_rng(5)
    samples = np.zeros(3 * rate) if floor is None else rng.normal(0, floor, 3 * rate)
    t = np.arange(1024 * rate // 1000, 2000 * rate // 1000)
    samples[t] += 0.5 * np.sin(2 * np.pi * 440 * t / rate)
    return samples.astype(np.float32)


@pytest.mark.parametrize(
    ("hangover", "refine", "speech_end_ms", "heard_ms"),
    [
        # the frame holding the tone's end (1984-2016 ms) + 2 hangover frames; without refinement the levels
        # are not used, so the frame 2560-2592 that straddles 2080 + 500 ms decides: known at 2600 ms
        (2, False, 2080, 2600),
        # refined: known when the stream reaches offset + 500 ms (the straddling frame's blocks up to there,
        # none or some at the noise floor, are evidence enough)
        (2, True, 2000, 2500),  # back over 2 noise frames and the 2 noise blocks of 1984-2016: the tone's end
        (
            4,
            True,
            2048,
            2550,
        ),  # 2144 ms, moved back by at most 96 ms; known in the 10 ms chunk ending at 2550
        (0, True, 2000, 2500),  # no hangover: the noise blocks inside the last frame still go
    ],
)
def test_refined_offset_is_where_the_energy_ends(
    hangover: int, refine: bool, speech_end_ms: int, heard_ms: int
) -> None:
    engine = HangoverEngine(hangover)
    config = TurnDetection(refine_offset=refine)
    samples = burst_in_noise()
    detector = TurnDetector(config, engine=engine, input_rate=16000)
    events_at: list[tuple[int, object]] = []
    for i in range(0, len(samples), 160):  # 10 ms chunks
        events_at += [(detector.now_ms, e) for e in detector.push(samples[i : i + 160])]
    events_at += [(detector.now_ms, e) for e in detector.flush()]
    audio_end_ms = speech_end_ms + 500
    assert events_at == [
        (1060, SpeechStarted(audio_start_ms=724, speech_start_ms=1024)),  # frame 1024-1056 complete
        (heard_ms, SpeechStopped(audio_end_ms=audio_end_ms, speech_end_ms=speech_end_ms)),
    ]
    offline = detect_turns(Audio.from_array(samples, 16000), config, engine)
    assert offline.turns == [Turn(724, audio_end_ms, 1024, speech_end_ms)]


def test_refinement_over_digital_silence() -> None:
    analysis = detect_turns(Audio.from_array(burst_in_noise(None), 16000), TurnDetection(), HangoverEngine(2))
    assert analysis.turns == [Turn(724, 2500, 1024, 2000)]


def test_the_offset_is_refined_once_a_noise_floor_is_known() -> None:
    # the tone starts after 224 ms of noise only (< 256 ms): at the drop (1280 ms) no floor is known yet; one
    # quiet frame later it is, and the offset moves back to where the energy ends (the stop with it)
    samples = burst_in_noise()[800 * 16 :]
    turns = detect_turns(Audio.from_array(samples, 16000), TurnDetection(), HangoverEngine(2)).turns
    assert turns == [Turn(0, 1200 + 500, 224, 1200)]
    # speech from the first sample: the floor is known 256 ms after the drop, still before the stop
    samples = burst_in_noise()[1024 * 16 :]
    detector = TurnDetector(TurnDetection(), engine=HangoverEngine(2), input_rate=16000)
    events = [e for i in range(0, len(samples), 160) for e in detector.push(samples[i : i + 160])]
    events += detector.flush()
    assert turns_from_events(events) == [Turn(0, 976 + 500, 0, 976)]
    offline = detect_turns(Audio.from_array(samples, 16000), TurnDetection(), HangoverEngine(2)).turns
    assert offline == turns_from_events(events)


def test_without_a_noise_floor_before_the_stop_the_offset_stays() -> None:
    # a 200 ms silence ends the turn before 256 ms of quiet frames after the drop have set a floor
    samples = burst_in_noise()[1024 * 16 :]
    config = TurnDetection(silence_duration_ms=200)
    turns = detect_turns(Audio.from_array(samples, 16000), config, HangoverEngine(2)).turns
    assert turns == [Turn(0, 1056 + 200, 0, 1056)]


def test_hand_made_tracks_and_the_energy_engine_are_not_refined() -> None:
    t = track((0, 31), (1, 63), (0, 40))
    assert t.levels_db is None
    energy = detect_turns(Audio.from_array(burst_in_noise(), 16000), TurnDetection(), "energy")
    assert energy.track.levels_db is None


@pytest.mark.parametrize("engine", ["silero", "webrtc", HangoverEngine(3)])
def test_refined_streaming_equals_offline_with_random_chunks(conversation: Audio, engine: object) -> None:
    config = TurnDetection()
    offline = detect_turns(conversation, config, engine)  # type: ignore[arg-type]
    unrefined = detect_turns(conversation, TurnDetection(refine_offset=False), engine)  # type: ignore[arg-type]
    assert len(offline.turns) == len(unrefined.turns) == 2
    # refinement only moves offsets (and the stops after them) earlier, and here it moves them
    for refined, plain in zip(offline.turns, unrefined.turns, strict=True):
        assert refined.speech_start_ms == plain.speech_start_ms
        assert plain.speech_end_ms - 96 <= refined.speech_end_ms <= plain.speech_end_ms
        assert refined.end_ms - refined.speech_end_ms == 500
    moved = [p.speech_end_ms - r.speech_end_ms for r, p in zip(offline.turns, unrefined.turns, strict=True)]
    assert sum(moved) > 0
    for seed in range(3):
        detector = TurnDetector(config, engine=engine, input_rate=24000)  # type: ignore[arg-type]
        rng = np.random.default_rng(seed)
        events, i = [], 0
        while i < len(conversation.samples):
            size = int(rng.integers(1, 6000))
            events += detector.push(conversation.samples[i : i + size])
            i += size
        events += detector.flush()
        assert turns_from_events(events) == offline.turns


def test_refine_offset_is_validated() -> None:
    with pytest.raises(ConfigError, match="refine_offset"):
        TurnDetection(refine_offset="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["prefix_padding_ms", "silence_duration_ms"])
def test_turn_detection_bounds_its_durations(field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}=1000000000000 is out of range: at most 600000 ms"):
        TurnDetection(**{field: 10**12})
    assert getattr(TurnDetection(**{field: 600_000}), field) == 600_000


# --- the stop is known when the stream reaches it -------------------------------------------------


# speech 320-960 ms; 15 quiet frames to 1440 ms; frame 1440-1472 is loud: it straddles 960 + 500 = 1460
STRADDLING = [0.0] * 10 + [1.0] * 20 + [0.0] * 15 + [1.0] * 20 + [0.0] * 30


def test_without_levels_a_loud_frame_straddling_the_turns_end_continues_the_turn() -> None:
    """A 480 ms gap of quiet frames then a loud frame that straddles offset + 500 ms: nothing says the speech
    resumed after the silence was complete, so the turn goes on (hand-made tracks have no levels)."""
    assert turns(track(*[(p, 1) for p in STRADDLING])) == [Turn(20, 2580, 320, 2080)]


def two_bursts(resume_ms: float) -> np.ndarray:
    """burst_in_noise's tone (1024-2000 ms), and another from `resume_ms` to 2800 ms, at 16 kHz."""
    samples = burst_in_noise()
    t = np.arange(int(resume_ms * 16), 2800 * 16)
    samples[t] += 0.5 * np.sin(2 * np.pi * 440 * t / 16000)
    return samples


# refined offset 2000 ms (the tone's end), silence 510 ms: the turn ends at 2510, inside frame 2496-2528
SPLIT_CONFIG = TurnDetection(silence_duration_ms=510)


@pytest.mark.parametrize(
    ("resume_ms", "expected"),
    [
        # the speech resumes after 2510: the straddling frame's block 2496-2504 is at the noise floor, so
        # the silence was complete; the turn stops at 2510 and the frame starts the next one there
        (2512, [Turn(724, 2510, 1024, 2000), Turn(2510, 3000, 2510, 2800)]),  # open at the 3 s end
        # the speech resumes at 2500, inside that block: one turn, as before
        (2500, [Turn(724, 3000, 1024, 2800)]),
    ],
)
def test_a_loud_frame_straddling_the_turns_end_splits_only_on_evidence(
    resume_ms: float, expected: list[Turn]
) -> None:
    samples = two_bursts(resume_ms)
    offline = detect_turns(Audio.from_array(samples, 16000), SPLIT_CONFIG, HangoverEngine(0)).turns
    assert offline == expected


@pytest.mark.parametrize("chunk_ms", [1, 7, 10, 20, 32, 40, 100, 3000])
@pytest.mark.parametrize("resume_ms", [2512, 2500])
def test_the_stop_is_known_when_the_stream_reaches_it(chunk_ms: int, resume_ms: float) -> None:
    """Streaming equals offline for any chunking, and a stop the levels vouch for comes with the chunk that
    reaches audio_end_ms, before the straddling frame is complete."""
    samples = two_bursts(resume_ms)
    detector = TurnDetector(SPLIT_CONFIG, engine=HangoverEngine(0), input_rate=16000)
    events_at: list[tuple[float, object]] = []
    step = chunk_ms * 16
    for i in range(0, len(samples), step):
        events_at += [(detector.reached_ms, e) for e in detector.push(samples[i : i + step])]
    events_at += [(detector.reached_ms, e) for e in detector.flush()]
    offline = detect_turns(Audio.from_array(samples, 16000), SPLIT_CONFIG, HangoverEngine(0)).turns
    assert turns_from_events([e for _, e in events_at]) == offline
    first_stop = next((at, e) for at, e in events_at if isinstance(e, SpeechStopped))
    if resume_ms == 2512:
        assert first_stop[1].audio_end_ms == 2510
        assert 2510 <= first_stop[0] < 2510 + chunk_ms  # the chunk that reached it
