import threading

import numpy as np
import pytest

from voicelab.audio.core import Audio
from voicelab.errors import ConfigError
from voicelab.speech.tts import VOICES, synthesize, synthesize_with_marks

SENTENCE = "The order number is four five six seven."


def _rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(audio.samples.astype(np.float64) ** 2)))


def test_synthesize_returns_24khz_speech():
    audio = synthesize(SENTENCE)
    assert isinstance(audio, Audio)
    assert audio.rate == 24000
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert 1500 < audio.duration_ms < 4000
    assert _rms(audio) > 0.02
    assert np.abs(audio.samples).max() <= 1.0


def test_duration_grows_with_text_length():
    short = synthesize("Thank you.")
    medium = synthesize("Yes, please send me the return label.")
    long = synthesize("Yes, please send me the return label. No, that is all. Thank you, goodbye.")
    assert short.duration_ms < medium.duration_ms < long.duration_ms


def test_duration_shrinks_with_speed():
    durations = [synthesize(SENTENCE, speed=s).duration_ms for s in (0.25, 0.4, 0.5, 1.0, 1.5)]
    assert durations == sorted(durations, reverse=True)
    # espeak's own rate covers 0.46-1.5: the duration scales roughly as 1 / speed
    assert durations[3] / durations[4] == pytest.approx(1.5, rel=0.15)
    assert durations[0] / durations[3] == pytest.approx(4.0, rel=0.2)


def test_every_voice_sounds_different():
    clips = {name: synthesize("Thank you.", voice=name) for name in VOICES}
    assert set(VOICES) == {
        "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
    }  # fmt: skip
    assert len({spec for spec in VOICES.values()}) == len(VOICES)
    names = list(clips)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = clips[a].samples, clips[b].samples
            assert len(x) != len(y) or not np.allclose(x, y, atol=1e-3), (a, b)


def test_synthesis_is_deterministic():
    first = synthesize(SENTENCE, voice="ash")
    synthesize("Something else in between.", voice="coral")
    second = synthesize(SENTENCE, voice="ash")
    assert np.array_equal(first.samples, second.samples)


def test_thread_safe_and_deterministic_under_concurrency():
    expected = synthesize("Hello there.", voice="echo").samples
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(synthesize("Hello there.", voice="echo").samples)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(np.array_equal(r, expected) for r in results)


def test_unknown_voice_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        synthesize("hello", voice="robot")
    message = str(info.value)
    assert "'robot'" in message
    for name in VOICES:
        assert name in message


@pytest.mark.parametrize("speed", [0.1, 0.24, 1.51, 3, float("nan"), "fast"])
def test_bad_speed_is_a_config_error(speed):
    with pytest.raises(ConfigError, match="speed"):
        synthesize("hello", speed=speed)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_a_config_error(text):
    with pytest.raises(ConfigError, match="empty text"):
        synthesize(text)


def test_word_marks_point_at_words_in_order():
    text = "Hi, I would like to return an order."
    audio, marks = synthesize_with_marks(text)
    offsets = [offset for offset, _ in marks]
    times = [ms for _, ms in marks]
    assert offsets == [0, 4, 6, 12, 17, 20, 27, 30]
    assert [text[o : o + 2] for o in offsets] == ["Hi", "I ", "wo", "li", "to", "re", "an", "or"]
    assert times == sorted(times)
    assert 0 <= times[-1] < audio.duration_ms


def test_word_marks_use_python_string_offsets_for_non_ascii():
    text = "Café au lait, please."
    _, marks = synthesize_with_marks(text)
    offsets = [offset for offset, _ in marks]
    assert text[offsets[1] : offsets[1] + 2] == "au"
    assert text[offsets[-1] : offsets[-1] + 6] == "please"
