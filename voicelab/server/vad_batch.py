"""Silero VAD for many sessions at once: one onnxruntime call scores a frame of every stream that has one.

A server with N sessions in real time scores ~31 Silero frames per second per session. Run one stream at a
time, each call costs the model's fixed overhead; stacked into one call of batch N the cost per stream-frame
drops 2-3x (bench/bench_server.py), and onnxruntime releases the GIL while it runs, so the batching thread
(``voicelab-vad-batch``) uses the second core while the event loop serves sockets.

Exactness: a row of a batched call gives bit-for-bit the probability and next state of the same frame scored
alone (the model has no cross-row operation; checked by tests/server/test_vad_batch.py), each stream keeps its
own recurrent state and 64-sample context in its row of the batcher's arrays, and everything else (resampling,
framing, the silence gate, block levels, the turn logic) is the code of ``voicelab.audio.vad`` and
``voicelab.audio.turns`` run on the event loop. So a ``BatchedTurnDetector`` emits exactly the events a
``TurnDetector`` emits for the same chunks, only later: an append's events are ready once the batching
thread has scored its frames (a few ms), not when ``push`` returns.

    batcher = SileroBatcher()                  # or shared_batcher(): one per process
    detector = BatchedTurnDetector(TurnDetection(), 24000, batcher)
    detector.submit(samples, tag)              # queue a chunk (tag: whatever the caller wants back)
    detector.completed()                       # [(tag, events)] of the chunks scored so far, in order
    detector.wait()                            # the same, after waiting for every chunk submitted
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voicelab.audio.resample import VadResampler
from voicelab.audio.turns import TurnDetection, TurnEvent, _TurnMachine
from voicelab.audio.vad import (
    _CONTEXT,
    SILENCE_GATE,
    _as_float_samples,
    frame_levels_db,
    level_blocks,
    partial_levels_db,
    silero_session,
)
from voicelab.errors import AudioError

RATE = 16000
FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
FRAME_MS = 32
TICK_MS = 4.0  # the shortest time between two batched calls (the most a frame waits for its batch)


@dataclass
class _Chunk:
    """One submitted chunk: its frames, which of them the model must score, and the results once done."""

    tag: Any
    probs: np.ndarray
    levels: np.ndarray | None
    frames: np.ndarray  # the frames the model scores (the loud ones), in stream order
    loud: np.ndarray  # their indices in `probs`
    reached_ms: float = 0.0  # where the stream is once this chunk is in
    tail: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # its unfinished frame
    done: bool = False


@dataclass
class _Slot:
    """A stream's place in the batcher: its row of state and context, and its chunks waiting to be scored."""

    row: int
    fresh: bool = True  # the row still holds a previous stream's state: zero it before first use
    queue: list[_Chunk] = field(default_factory=list)


class SileroBatcher:
    """A thread that scores the queued frames of every stream in batched onnxruntime calls.

    Each round takes every chunk queued so far; step ``j`` of the round scores the ``j``-th queued frame of
    every stream that has one, in one call, so a stream's frames keep their order and each stream's state
    advances exactly as if it were scored alone.
    """

    def __init__(self, tick_ms: float = TICK_MS) -> None:
        self.tick_ms = tick_ms
        self._session = silero_session()
        self._cond = threading.Condition()
        self._waiting: dict[int, _Slot] = {}  # row -> slot with queued chunks
        self._free: list[int] = []
        self._rows = 0
        self._state = np.zeros((2, 16, 128), dtype=np.float32)
        self._context = np.zeros((16, _CONTEXT), dtype=np.float32)
        self._notify: dict[int, Callable[[], None]] = {}
        self._rate = np.array(RATE, dtype=np.int64)
        self.calls = 0  # onnxruntime calls made (for tests and benchmarks)
        self.frames = 0  # stream-frames scored
        self._stopped = False
        self._idle = False  # the thread waits for work (submit must notify it)
        self._thread = threading.Thread(target=self._run, name="voicelab-vad-batch", daemon=True)
        self._thread.start()
        # a daemon thread still inside onnxruntime when the interpreter exits aborts the process
        atexit.register(self.stop)

    def stop(self) -> None:
        """End the thread after its current round (at exit; chunks queued later are never scored)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # --- called from the streams' thread ---------------------------------------------------------------

    def open(self) -> _Slot:
        with self._cond:
            if self._free:
                row = self._free.pop()
            else:
                row, self._rows = self._rows, self._rows + 1
            return _Slot(row)

    def release(self, slot: _Slot) -> None:
        with self._cond:
            self._notify.pop(slot.row, None)
            self._waiting.pop(slot.row, None)
            self._free.append(slot.row)

    def submit(self, slot: _Slot, chunk: _Chunk, notify: Callable[[], None] | None) -> None:
        with self._cond:
            slot.queue.append(chunk)
            self._waiting[slot.row] = slot
            if notify is not None:
                self._notify[slot.row] = notify
            if self._idle:  # only a thread waiting for work needs waking (not one pausing for its tick)
                self._cond.notify()

    def wait_for(self, chunk: _Chunk) -> None:
        with self._cond:
            while not chunk.done:
                if self._stopped:
                    raise RuntimeError("the VAD batching thread has stopped (the interpreter is exiting)")
                self._cond.wait()

    # --- the batching thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                while not self._waiting and not self._stopped:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                if self._stopped:
                    return
            # a round at most every tick: frames that arrive meanwhile join it (a busy server's batches
            # grow with its sessions; a lone stream is scored at once)
            pause = last + self.tick_ms / 1000.0 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            last = time.monotonic()
            with self._cond:
                slots = list(self._waiting.values())
                self._waiting.clear()
                work = [(slot, slot.queue) for slot in slots]
                for slot in slots:
                    slot.queue = []
                notify = [self._notify[s.row] for s in slots if s.row in self._notify]
                rows = self._rows
            try:
                self._score(work, rows)
            finally:
                with self._cond:
                    for _, chunks in work:
                        for chunk in chunks:
                            chunk.done = True
                    self._cond.notify_all()
                for wake in notify:
                    with contextlib.suppress(Exception):  # a closed event loop: its connection is gone
                        wake()

    def _grow(self, rows: int) -> None:
        if rows <= self._context.shape[0]:
            return
        size = max(rows, 2 * self._context.shape[0])
        state = np.zeros((2, size, 128), dtype=np.float32)
        context = np.zeros((size, _CONTEXT), dtype=np.float32)
        state[:, : self._state.shape[1]] = self._state
        context[: self._context.shape[0]] = self._context
        self._state, self._context = state, context

    def _score(self, work: list[tuple[_Slot, list[_Chunk]]], rows: int) -> None:
        self._grow(rows)
        streams: list[tuple[int, np.ndarray, list[tuple[_Chunk, int]]]] = []
        for slot, chunks in work:
            if slot.fresh:
                slot.fresh = False
                self._state[:, slot.row] = 0.0
                self._context[slot.row] = 0.0
            targets = [(chunk, int(i)) for chunk in chunks for i in chunk.loud]
            if targets:
                frames = chunks[0].frames if len(chunks) == 1 else np.concatenate([c.frames for c in chunks])
                streams.append((slot.row, frames, targets))
        step = 0
        while streams:
            index = np.array([row for row, _, _ in streams], dtype=np.intp)
            window = np.empty((len(streams), _CONTEXT + FRAME), dtype=np.float32)
            window[:, :_CONTEXT] = self._context[index]
            window[:, _CONTEXT:] = np.stack([frames[step] for _, frames, _ in streams])
            prob, state = self._session.run(
                None, {"input": window, "state": self._state[:, index], "sr": self._rate}
            )
            self.calls += 1
            self.frames += len(streams)
            self._state[:, index] = state
            self._context[index] = window[:, -_CONTEXT:]
            for k, (_, _, targets) in enumerate(streams):
                chunk, at = targets[step]
                chunk.probs[at] = prob[k, 0]
            step += 1
            streams = [s for s in streams if len(s[2]) > step]


_SHARED: SileroBatcher | None = None
_SHARED_LOCK = threading.Lock()


def shared_batcher() -> SileroBatcher:
    """The process-wide batcher (its thread starts on first use)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SileroBatcher()
        return _SHARED


class BatchedTurnDetector:
    """Streaming server_vad with Silero scored by a ``SileroBatcher``; the events of ``TurnDetector``.

    ``submit`` does the per-stream work at once (resampling, framing, the silence gate, block levels) and
    queues the frames for the model; ``completed`` returns, in submission order, each scored chunk's tag
    and turn events, stopping at the first chunk still being scored (``last_probs``: their frame
    probabilities); ``wait`` first waits for all of them.
    ``wakeup`` (optional, any thread may call it) is called after a round scored this stream's frames.
    ``push`` (the ``TurnDetectorLike`` method) is ``submit`` then ``wait``: synchronous, for callers that
    want the events at once.
    """

    def __init__(
        self,
        config: TurnDetection | None = None,
        input_rate: int = 24000,
        batcher: SileroBatcher | None = None,
    ) -> None:
        if not isinstance(input_rate, int) or input_rate <= 0:
            raise AudioError(f"input_rate must be a positive integer sample rate in Hz, got {input_rate!r}")
        self.input_rate = input_rate
        self._batcher = batcher or shared_batcher()
        self._slot = self._batcher.open()
        weakref.finalize(self, self._batcher.release, self._slot)
        self._machine = _TurnMachine(config or TurnDetection(), FRAME_MS)
        self._resampler = None if input_rate == RATE else VadResampler(input_rate, RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        self._blocks = level_blocks(FRAME_MS, FRAME)
        self._chunks: deque[_Chunk] = deque()
        self.samples_in = 0
        self._wakeup: Callable[[], None] | None = None
        self.last_probs = np.zeros(0, dtype=np.float32)  # of the chunks the last completed()/wait() returned

    @property
    def wakeup(self) -> Callable[[], None] | None:
        return self._wakeup

    @wakeup.setter
    def wakeup(self, callback: Callable[[], None] | None) -> None:
        # a bound method is held weakly: an engine that owns this detector is not kept alive by it
        if inspect.ismethod(callback):
            method = weakref.WeakMethod(callback)

            def call() -> None:
                target = method()
                if target is not None:
                    target()

            self._wakeup = call
        else:
            self._wakeup = callback

    @property
    def config(self) -> TurnDetection:
        return self._machine.config

    @config.setter
    def config(self, value: TurnDetection) -> None:
        self._machine.config = value

    @property
    def now_ms(self) -> int:
        return self.samples_in * 1000 // self.input_rate

    @property
    def reached_ms(self) -> float:
        """Where the stream is, exactly (`now_ms` is it in whole ms)."""
        return self.samples_in * 1000 / self.input_rate

    @property
    def busy(self) -> bool:
        """True while a submitted chunk has not been handed back by ``completed``."""
        return bool(self._chunks)

    def submit(self, samples: np.ndarray, tag: Any = None) -> None:
        data = _as_float_samples(samples)
        self.samples_in += len(data)
        if self._resampler is not None:
            data = self._resampler.resample_chunk(data, last=False)
        if len(self._pending):
            data = np.concatenate([self._pending, data])
        whole = len(data) // FRAME * FRAME
        self._pending = data[whole:].copy()
        frames = data[:whole].reshape(-1, FRAME)
        probs = np.zeros(len(frames), dtype=np.float32)
        loud = np.flatnonzero(np.abs(frames).max(axis=1, initial=0.0) >= SILENCE_GATE)
        levels = frame_levels_db(frames, self._blocks)
        # the unfinished frame's samples: a new array at every submit, its levels computed only if needed
        chunk = _Chunk(tag, probs, levels, frames[loud], loud, self.reached_ms, self._pending)
        self._chunks.append(chunk)
        if len(loud):
            self._batcher.submit(self._slot, chunk, self._wakeup)
        else:
            chunk.done = True  # nothing for the model: (near-)digital silence scores 0

    def completed(self) -> list[tuple[Any, list[TurnEvent]]]:
        out: list[tuple[Any, list[TurnEvent]]] = []
        probs: list[np.ndarray] = []
        while self._chunks and self._chunks[0].done:
            chunk = self._chunks.popleft()
            probs.append(chunk.probs)
            tail = functools.partial(partial_levels_db, chunk.tail, FRAME, self._blocks)
            events = self._machine.feed(chunk.probs, chunk.levels, chunk.reached_ms, tail)
            out.append((chunk.tag, events))
        self.last_probs = np.concatenate(probs) if probs else np.zeros(0, dtype=np.float32)
        return out

    def wait(self) -> list[tuple[Any, list[TurnEvent]]]:
        for chunk in self._chunks:  # a silent chunk is done at once, before the loud ones queued ahead of it
            if not chunk.done:
                self._batcher.wait_for(chunk)
        return self.completed()

    def push(self, samples: np.ndarray) -> list[TurnEvent]:
        self.submit(samples)
        return [event for _, events in self.wait() for event in events]

    def clear(self) -> None:
        """As ``TurnDetector.clear``: applies after every chunk submitted so far (they are scored first)."""
        if self._chunks:
            raise AudioError(
                "clear() with chunks still being scored: call wait() and handle their events first"
            )
        self._machine.clear(self.now_ms)


class LoopWaker:
    """Runs callbacks on an asyncio loop from other threads, one loop wake-up for all those queued meanwhile
    (the batching thread finishes a round for many connections of one loop at once)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queued: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def call(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the loop soon (any thread)."""
        with self._lock:
            self._queued.append(callback)
            if len(self._queued) > 1:
                return  # a wake-up is on its way
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: its connections are gone
            with self._lock:
                self._queued.clear()

    def _run(self) -> None:
        with self._lock:
            queued, self._queued = self._queued, []
        for callback in queued:
            callback()


def batched_turn_detector(
    threshold: float, prefix_ms: int, silence_ms: int, input_rate: int
) -> BatchedTurnDetector:
    """A ``TurnDetectorFactory`` (``EngineServices.turn_detector``) on the process-wide batcher."""
    return BatchedTurnDetector(TurnDetection(threshold, prefix_ms, silence_ms), input_rate)


__all__ = ["BatchedTurnDetector", "LoopWaker", "SileroBatcher", "batched_turn_detector", "shared_batcher"]
