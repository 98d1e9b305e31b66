import numpy as np
import pytest

from voicelab.audio.core import Audio
from voicelab.errors import ConfigError
from voicelab.speech.asr import GrammarTranscriber
from voicelab.speech.corpus import CONVERSATIONS, make_conversation
from voicelab.speech.tts import synthesize

LINES = [line for lines in CONVERSATIONS.values() for line in lines]


@pytest.fixture(scope="module")
def transcriber() -> GrammarTranscriber:
    return GrammarTranscriber(LINES)


@pytest.mark.parametrize("voice", ["alloy", "cedar", "shimmer"])
def test_every_fixture_line_is_transcribed_exactly(transcriber, voice):
    got = [transcriber.transcribe(synthesize(line, voice=voice)) for line in LINES]
    assert got == LINES


@pytest.mark.parametrize("speed", [0.8, 1.25])
def test_exact_at_other_speeds(transcriber, speed):
    got = [transcriber.transcribe(synthesize(line, voice="ash", speed=speed)) for line in LINES]
    assert got == LINES


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_exact_on_turns_cut_from_a_20db_noisy_conversation(transcriber, name):
    labelled = make_conversation(CONVERSATIONS[name], voice="coral", snr_db=20, noise="white", seed=3)
    turns = [labelled.audio.slice_ms(s.start_ms - 300, s.end_ms + 300) for s in labelled.segments]
    assert [transcriber.transcribe(t) for t in turns] == list(CONVERSATIONS[name])


def test_case_and_punctuation_come_back_as_given():
    phrases = ["YES!", "no, thanks...", "Maybe?"]
    asr = GrammarTranscriber(phrases)
    assert asr.transcribe(synthesize("no thanks")) == "no, thanks..."
    assert asr.transcribe(synthesize("yes")) == "YES!"


def test_digits_are_read_one_by_one():
    asr = GrammarTranscriber(["Order 4567 please", "Cancel it"])
    assert asr.transcribe(synthesize("Order four five six seven please")) == "Order 4567 please"


def test_unknown_words_are_spelled_and_unspeakable_phrases_skipped():
    asr = GrammarTranscriber(["Open voicelab now", "日本", "Close it"])
    assert asr.spelled == {"voicelab": "V IY OW AY S IY IY EH L AH B IY"}
    assert asr.skipped == ["日本"]
    assert asr.transcribe(synthesize("Open V O I C E L A B now")) == "Open voicelab now"


def test_silence_and_noise_give_empty_string(transcriber):
    silence = Audio.from_array(np.zeros(24000, np.float32), 24000)
    noise = Audio.from_array(np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32), 24000)
    assert transcriber.transcribe(silence) == ""
    assert transcriber.transcribe(noise) == ""


def test_accepts_any_input_rate(transcriber):
    audio = synthesize("Thank you.").resample(8000)
    assert transcriber.transcribe(audio) == "Thank you."


@pytest.mark.parametrize("phrases", [[], "yes", ["日本"]])
def test_bad_phrase_lists_are_config_errors(phrases):
    with pytest.raises(ConfigError):
        GrammarTranscriber(phrases)


def test_transcribe_needs_audio(transcriber):
    with pytest.raises(ConfigError, match=r"Audio\.from_array"):
        transcriber.transcribe(np.zeros(100, np.float32))  # type: ignore[arg-type]


def test_streamed_in_chunks_equals_whole_and_streams_interleave(transcriber):
    clips = [synthesize(line, voice="echo") for line in LINES[:3]]
    whole = [transcriber.transcribe(clip) for clip in clips]
    assert whole == LINES[:3]
    streams = [transcriber.stream(24000) for _ in clips]
    pcm = [clip.to_pcm16() for clip in clips]
    longest = max(len(p) for p in pcm)
    for offset in range(0, longest, 1920):  # 40 ms chunks, the three utterances interleaved
        for stream, data in zip(streams, pcm, strict=True):
            if offset < len(data):
                stream.feed(data[offset : offset + 1920])
    assert [s.finish() for s in streams] == whole
    assert len(transcriber._spare) == 3  # the decoders went back to the pool


def test_a_finished_stream_refuses_more_audio(transcriber):
    stream = transcriber.stream(24000)
    stream.feed(synthesize("Thank you.").samples)
    stream.finish()
    with pytest.raises(ConfigError, match="open a new one"):
        stream.feed(np.zeros(10, np.float32))
    cancelled = transcriber.stream(16000)
    cancelled.cancel()
    assert transcriber.transcribe(synthesize(LINES[0])) == LINES[0]
