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

import numpy as np

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
    """Recognise exactly one of a fixed set of phrases (thread-safe; one decoder per instance)."""

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
        grammar = f"#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = {alternatives} ;\n"
        self._decoder.add_jsgf_string("phrases", grammar)
        self._decoder.activate_search("phrases")
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

    def transcribe(self, audio: Audio) -> str:
        """The phrase spoken in ``audio`` exactly as given to the constructor, or "" if none matched."""
        if not isinstance(audio, Audio):
            raise ConfigError(
                f"transcribe needs a voicelab Audio, got {type(audio).__name__}; "
                "wrap samples with Audio.from_array(samples, rate)"
            )
        samples = audio.resample(ASR_RATE).samples if audio.rate != ASR_RATE else audio.samples
        pad = np.zeros(round(PAD_S * ASR_RATE), np.float32)
        signal = np.concatenate([pad, samples, pad]).astype(np.float64)
        signal += np.random.default_rng(self._rng_seed).normal(0.0, DITHER, signal.size)
        pcm = (np.clip(signal, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, no_search=False, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        if hyp is None:
            return ""
        return self._by_words.get(" ".join(hyp.hypstr.split()), "")


__all__ = ["ASR_RATE", "GrammarTranscriber"]
