"""Slow work the sans-I/O engine hands to its driver: a brain's reply, a transcript still being decoded.

An `Engine(..., hand_out_work=True)` never runs a user's brain or a slow transcription itself. It queues a
`Work`, which the driver takes with `engine.take_work()`, performs off its event loop, and gives back with
`engine.deliver(work, result, now_ms)`:

    for work in engine.take_work():
        result = await work.run_async(executor)    # a worker thread, or awaited if the brain is `async def`
        events = engine.deliver(work, result, now_ms)

`Work.run()` does the same work blocking, in the calling thread (an engine without a driver that takes work
does this itself). Neither ever raises for a failure of the work: the failure is the `WorkResult.error` the
engine turns into a failed response or a `transcription.failed` event.

A `Work` has up to three stages, so that only the part that needs it runs where it must: `prepare` (blocking:
e.g. decoding the user's audio for the brain), `think` (the brain's `reply`; a coroutine function is
awaited on the driver's loop) and `finish` (blocking: e.g. speech synthesis of the reply). A `Work` made
from a `concurrent.futures.Future` (a transcript decoded in another process) is waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Literal

WorkKind = Literal["reply", "transcript"]


@dataclass(frozen=True)
class WorkResult:
    """What a `Work` gave: its value, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


def _identity(value: Any) -> Any:
    return value


@dataclass(eq=False)
class Work:
    """One piece of slow work of one engine (see the module docstring). `kind`: "reply" (a response's brain
    decision, with what it needs before and after) or "transcript" (a user item's transcript).
    `holds_frames`: the engine handles that connection's later client frames only once this is delivered
    (so their events keep the order an inline run gives)."""

    id: int
    kind: WorkKind
    holds_frames: bool = False
    prepare: Callable[[], Any] | None = None
    think: Callable[[Any], Any] | None = None
    finish: Callable[[Any], Any] | None = None
    future: Future[Any] | None = None
    is_async: bool = False  # `think` is a coroutine function: awaited on the driver's loop
    abandoned: bool = field(default=False, compare=False)  # the engine no longer needs the result

    def _prepare(self) -> Any:
        return self.prepare() if self.prepare is not None else None

    def _finish(self, value: Any) -> Any:
        return self.finish(value) if self.finish is not None else value

    def run(self) -> WorkResult:
        """Do the work here, blocking (any thread). An `async def` brain runs on a private event loop."""
        try:
            if self.future is not None:
                return WorkResult(self.future.result())
            value = (self.think or _identity)(self._prepare())
            if inspect.isawaitable(value):
                value = _run_coroutine(value)
            return WorkResult(self._finish(value))
        except Exception as exc:
            return WorkResult(error=exc)

    async def run_async(self, executor: Executor | None = None) -> WorkResult:
        """Do the work without blocking the running loop: blocking stages in `executor` (the loop's default
        one when None), an async `think` awaited here, a future waited for."""
        loop = asyncio.get_running_loop()
        try:
            if self.future is not None:
                return WorkResult(await asyncio.wrap_future(self.future))
            if not self.is_async:
                return await loop.run_in_executor(executor, self.run)
            prepared = await loop.run_in_executor(executor, self._prepare) if self.prepare else None
            value = (self.think or _identity)(prepared)
            if inspect.isawaitable(value):
                value = await value
            if self.finish is not None:
                value = await loop.run_in_executor(executor, self._finish, value)
            return WorkResult(value)
        except Exception as exc:
            return WorkResult(error=exc)


class WorkerThreads(Executor):
    """A pool of daemon threads for `Work.run_async`: a brain that never returns holds its thread but does
    not keep the interpreter from exiting (a `ThreadPoolExecutor` joins its threads at exit)."""

    def __init__(self, max_workers: int, name: str = "voicelab-work") -> None:
        self.max_workers = max_workers
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("the worker threads are shut down")
        future: Future[Any] = Future()
        call = (lambda: fn(*args, **kwargs)) if kwargs else fn
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        self._jobs.put((future, call, () if kwargs else args))
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


def _run_coroutine(awaitable: Awaitable[Any]) -> Any:
    """Await `awaitable` to completion from synchronous code (in a helper thread when this thread already
    runs an event loop)."""

    async def wrapped() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapped())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(wrapped())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="voicelab-brain", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = ["Work", "WorkKind", "WorkResult", "WorkerThreads"]
