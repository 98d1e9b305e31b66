"""Transcripts cached by the audio's hash: a replayed caller is decoded once per process.

Experiments replay the same caller audio run after run (repeats, variants, the same scenario against other
instructions), and the embedded server transcribes every turn to pick the scripted reply. The decoder is
deterministic, so the same audio fed the same way gives the same transcript: ``cached_transcriber`` keeps it
under a hash of the phrase list, how the audio was fed (each feed's length) and the audio itself.

A turn is transcribed while it is spoken (``stream()``), before its end and so its hash are known. The cache
also keeps the hash after each feed of every turn it decoded; a new turn whose feeds keep matching such a
prefix is held back instead of decoded, and at ``finish`` either its transcript is in the cache (nothing was
decoded) or it is decoded from its first feed then (a turn that matched a known turn up to its last feed: its
transcript comes later than if it had been decoded as it came). The first feed that matches no known prefix
starts the decoder at once with everything held so far.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from voicelab.server.services import StreamingTranscriber

MAX_ENTRIES = 4096  # transcripts kept (and 32x as many prefixes); the oldest go first


class _Stream(Protocol):
    def feed(self, pcm16: bytes) -> None: ...
    def finish(self) -> Future[str]: ...
    def cancel(self) -> None: ...


class TranscriptCache:
    """Transcripts by audio hash, and the hashes of the fed prefixes of decoded turns (thread-safe LRU)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._prefixes: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> str | None:
        with self._lock:
            text = self._texts.get(key)
            if text is None:
                self.misses += 1
                return None
            self._texts.move_to_end(key)
            self.hits += 1
            return text

    def knows_prefix(self, key: bytes) -> bool:
        with self._lock:
            return key in self._prefixes

    def put(self, key: bytes, text: str, prefixes: Sequence[bytes] = ()) -> None:
        with self._lock:
            self._texts[key] = text
            self._texts.move_to_end(key)
            while len(self._texts) > self.max_entries:
                self._texts.popitem(last=False)
            for prefix in prefixes:
                self._prefixes[prefix] = None
                self._prefixes.move_to_end(prefix)
            while len(self._prefixes) > 32 * self.max_entries:
                self._prefixes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()
            self._prefixes.clear()


_SHARED = TranscriptCache()


def shared_cache() -> TranscriptCache:
    """The process-wide cache used by the server's transcribers."""
    return _SHARED


class _CachedStream:
    def __init__(self, cache: TranscriptCache, seed: bytes, open_stream: Callable[[], _Stream]) -> None:
        self._cache = cache
        self._hash = hashlib.blake2b(seed, digest_size=20)
        self._open = open_stream
        self._inner: _Stream | None = None
        self._held: list[bytes] = []
        self._prefixes: list[bytes] = []

    def feed(self, pcm16: bytes) -> None:
        self._hash.update(len(pcm16).to_bytes(8, "little"))
        self._hash.update(pcm16)
        prefix = self._hash.copy().digest()
        self._prefixes.append(prefix)
        if self._inner is None and self._cache.knows_prefix(prefix):
            self._held.append(pcm16)  # so far a turn decoded before: maybe nothing to decode at all
            return
        self._start().feed(pcm16)

    def _start(self) -> _Stream:
        if self._inner is None:
            self._inner = self._open()
            for held in self._held:
                self._inner.feed(held)
            self._held = []
        return self._inner

    def finish(self) -> Future[str]:
        key = self._hash.digest()
        text = self._cache.get(key)
        if text is not None:
            if self._inner is not None:
                self._inner.cancel()
            done: Future[str] = Future()
            done.set_result(text)
            return done
        future = self._start().finish()
        prefixes = self._prefixes

        def remember(finished: Future[str]) -> None:
            if not finished.cancelled() and finished.exception() is None:
                self._cache.put(key, str(finished.result()), prefixes)

        future.add_done_callback(remember)
        return future

    def cancel(self) -> None:
        if self._inner is not None:
            self._inner.cancel()


def cached_transcriber(
    inner: StreamingTranscriber, phrases: Sequence[str], cache: TranscriptCache | None = None
) -> StreamingTranscriber:
    """`inner` (whole clips and streamed turns) with its transcripts cached (`shared_cache()` by default)."""
    from voicelab.server.services import StreamingTranscriber

    store = cache or shared_cache()
    seed = hashlib.blake2b("\n".join(phrases).encode("utf-8"), digest_size=20).digest()

    def whole(pcm16: bytes) -> str:
        key = hashlib.blake2b(b"whole" + seed + pcm16, digest_size=20).digest()
        text = store.get(key)
        if text is None:
            text = inner(pcm16)
            store.put(key, text)
        return text

    return StreamingTranscriber(whole, lambda: _CachedStream(store, b"stream" + seed, inner.stream))


__all__ = ["TranscriptCache", "cached_transcriber", "shared_cache"]
