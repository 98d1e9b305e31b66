"""Transcription in the worker process (EngineServices.pooled): the same transcripts as in-process."""

from __future__ import annotations

import numpy as np
import pytest

from voicelab.server.services import grammar_transcriber, pooled_transcriber
from voicelab.speech import synthesize

PHRASES = ["Hi, I would like to return an order.", "The order number is four five six seven.", "Thank you."]


def pcm16(text: str) -> bytes:
    speech = synthesize(text, voice="echo").samples
    padded = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(9600, np.float32)])
    return (padded * 32767).astype("<i2").tobytes()


def test_pooled_streams_give_the_in_process_transcripts() -> None:
    local, pooled = grammar_transcriber(PHRASES), pooled_transcriber(PHRASES)
    turns = [pcm16(text) for text in PHRASES]
    streams = [pooled.stream() for _ in turns]
    for start in range(0, max(len(t) for t in turns), 9600):  # interleaved, 200 ms at a time
        for stream, turn in zip(streams, turns, strict=True):
            if start < len(turn):
                stream.feed(turn[start : start + 9600])
    results = [stream.finish().result(timeout=30) for stream in streams]
    assert results == PHRASES
    assert results == [local(turn) for turn in turns]


def test_pooled_whole_clip_and_cancel() -> None:
    pooled = pooled_transcriber(PHRASES)
    cancelled = pooled.stream()
    cancelled.feed(pcm16(PHRASES[0]))
    cancelled.cancel()
    assert pooled(pcm16(PHRASES[1])) == PHRASES[1]


def test_a_failing_turn_fails_its_future_only() -> None:
    pooled = pooled_transcriber(PHRASES)
    broken = pooled.stream()
    broken.feed(b"\x00")  # an odd PCM16 length: the worker cannot decode it
    good = pooled.stream()
    good.feed(pcm16(PHRASES[2]))
    outcome = broken.finish()
    assert good.finish().result(timeout=30) == PHRASES[2]
    with pytest.raises(RuntimeError, match=r"transcription failed \(ValueError"):
        outcome.result(timeout=30)
