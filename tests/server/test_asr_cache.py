"""Transcripts cached by audio hash (voicelab.server.asr_cache): a replayed turn is not decoded again."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import numpy as np

from voicelab.server.asr_cache import TranscriptCache, cached_transcriber
from voicelab.server.services import StreamingTranscriber, grammar_transcriber
from voicelab.speech import GrammarTranscriber, synthesize


class Spy:
    """An inner transcriber that records what its streams are fed; its text names the bytes it saw."""

    def __init__(self) -> None:
        self.opened: list[bytearray] = []
        self.whole_calls = 0

    def whole(self, pcm16: bytes) -> str:
        self.whole_calls += 1
        return f"whole {len(pcm16)}"

    def stream(self) -> Any:
        fed = bytearray()
        self.opened.append(fed)
        spy = self

        class Stream:
            cancelled = False

            def feed(self, pcm16: bytes) -> None:
                fed.extend(pcm16)

            def finish(self) -> Future[str]:
                done: Future[str] = Future()
                number = next(i for i, opened in enumerate(spy.opened) if opened is fed)
                done.set_result(f"heard {len(fed)} bytes in stream {number}")
                return done

            def cancel(self) -> None:
                self.cancelled = True

        return Stream()

    def transcriber(self, cache: TranscriptCache) -> StreamingTranscriber:
        return cached_transcriber(StreamingTranscriber(self.whole, self.stream), ["a phrase"], cache)


def turn(stream: Any, feeds: list[bytes]) -> str:
    for pcm in feeds:
        stream.feed(pcm)
    return str(stream.finish().result())


def test_a_replayed_turn_is_not_decoded_again() -> None:
    spy, cache = Spy(), TranscriptCache()
    transcriber = spy.transcriber(cache)
    feeds = [bytes([i]) * 9600 for i in range(1, 5)]
    first = turn(transcriber.stream(), feeds)
    assert first == "heard 38400 bytes in stream 0"
    assert turn(transcriber.stream(), feeds) == first
    assert len(spy.opened) == 1  # the replay opened no decoder
    assert cache.hits == 1


def test_a_turn_that_leaves_a_known_prefix_is_decoded_from_its_start() -> None:
    spy, cache = Spy(), TranscriptCache()
    transcriber = spy.transcriber(cache)
    feeds = [bytes([i]) * 9600 for i in range(1, 5)]
    turn(transcriber.stream(), feeds)
    other = [*feeds[:2], b"\x09" * 9600, feeds[3]]
    assert turn(transcriber.stream(), other) == "heard 38400 bytes in stream 1"
    assert bytes(spy.opened[1]) == b"".join(other)  # held feeds reached the decoder in order
    # the same bytes fed in other pieces are another turn (the decoder saw other feeds)
    regrouped = [feeds[0] + feeds[1], feeds[2], feeds[3]]
    assert turn(transcriber.stream(), regrouped) == "heard 38400 bytes in stream 2"
    # a turn that matches a known one up to its last feed is decoded at finish, from its first feed
    tail = [*feeds[:3], b"\x07" * 100]
    assert turn(transcriber.stream(), tail) == "heard 28900 bytes in stream 3"
    assert bytes(spy.opened[3]) == b"".join(tail)


def test_whole_clips_are_cached_per_phrase_list() -> None:
    spy, cache = Spy(), TranscriptCache()
    transcriber = spy.transcriber(cache)
    assert transcriber(b"\x01\x02" * 100) == transcriber(b"\x01\x02" * 100) == "whole 200"
    assert spy.whole_calls == 1
    other_phrases = cached_transcriber(StreamingTranscriber(spy.whole, spy.stream), ["other"], cache)
    other_phrases(b"\x01\x02" * 100)
    assert spy.whole_calls == 2


def test_cached_pocketsphinx_transcripts_equal_fresh_ones() -> None:
    phrases = ["I would like to return an order", "yes that is correct"]
    audio = synthesize(phrases[0], voice="echo").resample(24000)
    pcm = (np.clip(audio.samples, -1, 1) * 32767).astype("<i2").tobytes()
    feeds = [pcm[i : i + 9600] for i in range(0, len(pcm), 9600)]
    decoder = GrammarTranscriber(phrases).stream(24000)  # no cache at all
    for piece in feeds:
        decoder.feed(piece)
    fresh_text = str(decoder.finish())
    cache = TranscriptCache()
    cached = cached_transcriber(grammar_transcriber(phrases), phrases, cache)
    assert turn(cached.stream(), feeds) == fresh_text
    assert turn(cached.stream(), feeds) == fresh_text
    assert cache.hits == 1 and fresh_text == phrases[0]
