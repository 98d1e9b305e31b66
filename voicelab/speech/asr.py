"""Offline grammar-constrained speech recognition with pocketsphinx 5 and its bundled en-US model.

Free dictation on synthetic speech is poor, but a JSGF grammar made of the phrases a scenario expects
transcribes them exactly. ``GrammarTranscriber(phrases).transcribe(audio)`` returns one of ``phrases``
exactly as given (case and punctuation kept), or ``""`` when the audio matches none of them.

Normalisation for the grammar: lowercase; every character other than a letter, digit or apostrophe splits
words; a number is read digit by digit ("4567" -> "four five six seven"). A word missing from the CMU
pronunciation dictionary is spelled: it is added with the concatenated pronunciations of its letters
("voicelab" is recognised when spoken as "V O I C E L A B"). A word with no Latin letters to spell is
dropped from the phrase; a phrase left with no words is skipped and listed in ``.skipped``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr

from voicelab.audio.core import Audio
from voicelab.errors import ConfigError

ASR_RATE = 16000
PAD_S = 0.5  # silence added around the audio: the decoder needs context to close the last word
DITHER = 1e-3  # pocketsphinx features misbehave on digital silence; fixed-seed noise at -60 dBFS fixes it

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TOKEN = re.compile(r"[a-z0-9']+")


def _words(phrase: str) -> list[str]:
    words: list[str] = []
    for token in _TOKEN.findall(phrase.lower()):
        token = token.strip("'")
        if not token:
            continue
        if token.isdigit():
            words.extend(_DIGITS[int(d)] for d in token)
        else:
            words.append(token)
    return words


class GrammarTranscriber:
    """Recognise exactly one of a fixed set of phrases (thread-safe; a decoder per utterance in flight)."""

    def __init__(self, phrases: Sequence[str]) -> None:
        import pocketsphinx

        if isinstance(phrases, str) or not phrases:
            raise ConfigError(
                "GrammarTranscriber needs a non-empty list of phrases, e.g. GrammarTranscriber(['yes', 'no'])"
            )
        self._lock = threading.Lock()
        self._decoder = pocketsphinx.Decoder(lm=None, samprate=ASR_RATE, loglevel="FATAL")
        self.phrases: tuple[str, ...] = tuple(phrases)
        self.skipped: list[str] = []
        self.spelled: dict[str, str] = {}
        self._by_words: dict[str, str] = {}
        for phrase in self.phrases:
            if not isinstance(phrase, str):
                raise ConfigError(f"phrase {phrase!r} is not a string; pass phrases as a list of str")
            words = [w for w in _words(phrase) if self._ensure_word(w)]
            if not words:
                self.skipped.append(phrase)
                continue
            self._by_words.setdefault(" ".join(words), phrase)
        if not self._by_words:
            raise ConfigError(
                f"none of the phrases {list(self.phrases)!r} has a word pocketsphinx can pronounce; "
                "pass English phrases written in Latin letters"
            )
        alternatives = " | ".join(f"( {words} )" for words in self._by_words)
        self._grammar = f"#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = {alternatives} ;\n"
        self._decoder.add_jsgf_string("phrases", self._grammar)
        self._decoder.activate_search("phrases")
        self._spare: list[Any] = [self._decoder]
        self._cmn_start: str = self._decoder.get_cmn()
        self._rng_seed = 0

    def _ensure_word(self, word: str) -> bool:
        """Make ``word`` known to the decoder, spelling it if needed; False if it cannot be pronounced."""
        if self._decoder.lookup_word(word) is not None:
            return True
        letters = [c for c in word if "a" <= c <= "z"]
        phones = [self._decoder.lookup_word(c) for c in letters]
        if not letters or any(p is None for p in phones):
            return False
        pronunciation = " ".join(p for p in phones if p is not None)
        self._decoder.add_word(word, pronunciation, True)
        self.spelled[word] = pronunciation
        return True

    def _new_decoder(self) -> Any:
        import pocketsphinx

        decoder = pocketsphinx.Decoder(lm=None, samprate=ASR_RATE, loglevel="FATAL")
        for word, pronunciation in self.spelled.items():
            decoder.add_word(word, pronunciation, True)
        decoder.add_jsgf_string("phrases", self._grammar)
        decoder.activate_search("phrases")
        return decoder

    def _phrase_of(self, hyp: Any) -> str:
        if hyp is None:
            return ""
        return self._by_words.get(" ".join(hyp.hypstr.split()), "")

    def stream(self, rate: int = 24000) -> TranscriptionStream:
        """An utterance decoded as its audio arrives: ``feed`` chunks, then ``finish()`` for the phrase.

        Gives exactly what ``transcribe`` gives for the concatenated chunks. Each open stream holds its own
        decoder (about 27 MB, built in about 150 ms the first time so many streams are open at once).
        """
        with self._lock:
            decoder = self._spare.pop() if self._spare else None
        if decoder is None:
            decoder = self._new_decoder()
        return TranscriptionStream(self, decoder, rate)

    def _release(self, decoder: Any) -> None:
        with self._lock:
            self._spare.append(decoder)

    def transcribe(self, audio: Audio) -> str:
        """The phrase spoken in ``audio`` exactly as given to the constructor, or "" if none matched."""
        if not isinstance(audio, Audio):
            raise ConfigError(
                f"transcribe needs a voicelab Audio, got {type(audio).__name__}; "
                "wrap samples with Audio.from_array(samples, rate)"
            )
        stream = self.stream(int(audio.rate))
        stream.feed(audio.samples)
        return stream.finish()


class TranscriptionStream:
    """One utterance being decoded (see ``GrammarTranscriber.stream``); not thread-safe, use from one thread.

    The signal the decoder hears is the same as for a whole-utterance decode: ``PAD_S`` of silence, the audio
    resampled to 16 kHz by a ``soxr.ResampleStream`` (equal to resampling the whole at once), ``PAD_S`` of
    silence, all with the fixed-seed dither drawn in order.
    """

    def __init__(self, owner: GrammarTranscriber, decoder: Any, rate: int) -> None:
        self._owner = owner
        self._decoder: Any = decoder
        self._rng = np.random.default_rng(owner._rng_seed)
        self._resampler = (
            soxr.ResampleStream(rate, ASR_RATE, 1, dtype="float32", quality="HQ")
            if rate != ASR_RATE
            else None
        )
        decoder.set_cmn(owner._cmn_start)  # every utterance starts from the same cepstral mean
        decoder.start_utt()
        self._hear(np.zeros(round(PAD_S * ASR_RATE), np.float32))

    def _hear(self, samples: np.ndarray) -> None:
        if not samples.size:
            return
        signal = samples.astype(np.float64) + self._rng.normal(0.0, DITHER, samples.size)
        pcm = (np.clip(signal, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.process_raw(pcm, no_search=False, full_utt=False)

    def _resampled(self, samples: np.ndarray, last: bool) -> np.ndarray:
        if self._resampler is None:
            return samples
        out = self._resampler.resample_chunk(samples, last=last)
        return np.clip(out, -1.0, 1.0)

    def feed(self, samples: np.ndarray | bytes) -> None:
        """More of the utterance: float samples in [-1, 1] or PCM16 LE bytes, at the stream rate."""
        if self._decoder is None:
            raise ConfigError("this transcription stream is finished: open a new one with .stream()")
        if isinstance(samples, (bytes, bytearray, memoryview)):
            data = np.frombuffer(samples, dtype="<i2").astype(np.float32) / np.float32(32768.0)
        else:
            data = np.asarray(samples, dtype=np.float32)
        self._hear(self._resampled(data, last=False))

    def finish(self) -> str:
        """End the utterance: the phrase heard, exactly as given to the transcriber, or ""."""
        decoder = self._decoder
        if decoder is None:
            raise ConfigError("this transcription stream is already finished: open a new one with .stream()")
        try:
            self._hear(self._resampled(np.zeros(0, np.float32), last=True))
            self._hear(np.zeros(round(PAD_S * ASR_RATE), np.float32))
            decoder.end_utt()
            return self._owner._phrase_of(decoder.hyp())
        finally:
            self._decoder = None
            self._owner._release(decoder)

    def cancel(self) -> None:
        """Drop the utterance (its decoder goes back to the transcriber's pool)."""
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            decoder.end_utt()
            self._owner._release(decoder)


__all__ = ["ASR_RATE", "GrammarTranscriber", "TranscriptionStream"]
