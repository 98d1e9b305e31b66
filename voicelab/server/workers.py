"""Several server processes on one port: `serve(..., workers=N)` / `voicelab serve --workers N`.

One Python event loop is the ceiling of one server process: at ~50 concurrent real-time sessions most of it is
WebSocket framing and a write per event (bench/bench_server.py). With `workers=N` the server that
`serve()` starts in this process is joined by N - 1 worker processes listening on the same port with
`SO_REUSEPORT`; the kernel spreads new connections over the N listening sockets, so each process serves a
share of the sessions on its own loop (and its own batched VAD thread and transcription worker). Every
connection lives in one process: its events and their order are those of a one-process server.

A worker is `python -c` of this module's `main()`: it reads its settings (pickled: the brain or script,
services, pace, token) from its stdin, prints `ready` (or `failed <why>`) once it listens, then answers
`connections` lines with its open connection count and stops at EOF: when the parent closes the server,
exits, or is killed, the pipe closes and the worker shuts down.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from voicelab.errors import ConfigError

MAX_WORKERS = 64
READY_TIMEOUT_S = 120.0  # a worker imports numpy, onnxruntime and the VAD model before it listens


def check_workers(workers: Any, settings: dict[str, Any]) -> int:
    """`workers` as a process count; the settings a worker needs must cross a process boundary."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"workers must be a whole number from 1 to {MAX_WORKERS} (server processes sharing the port), "
            f"got {workers!r}"
        )
    if workers == 1:
        return 1
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError(
            "workers > 1 shares the port between processes with SO_REUSEPORT, which this platform lacks; "
            "use workers=1"
        )
    try:
        pickle.dumps(settings)
    except Exception as exc:
        raise ConfigError(
            f"workers={workers} runs the server in {workers} processes, so brain= and services= must be "
            f"picklable (module-level classes and functions, not lambdas or closures): {exc}. Pass "
            "script=..., a module-level Brain class or factory, or use workers=1."
        ) from None
    return workers


class WorkerPool:
    """The N - 1 worker processes of a server (the parent process serves too)."""

    def __init__(self, count: int, settings: dict[str, Any]) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        root = str(Path(__file__).resolve().parent.parent.parent)  # the folder holding this voicelab
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        payload = pickle.dumps(settings)
        try:
            for _ in range(count):
                proc = subprocess.Popen(
                    [sys.executable, "-c", "from voicelab.server.workers import main; main()"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                assert proc.stdin is not None
                proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
                proc.stdin.flush()
                self.processes.append(proc)
            for proc in self.processes:
                self._await_ready(proc)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _await_ready(proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(READY_TIMEOUT_S)
        text = line[0].decode(errors="replace").strip() if line else ""
        if text != "ready":
            why = text.removeprefix("failed ").strip() or f"no answer within {READY_TIMEOUT_S:.0f} s"
            raise ConfigError(f"a server worker process could not start: {why}")

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.processes]

    def connections(self) -> int:
        """Open connections over the workers (each asked in turn; a dead worker counts 0)."""
        total = 0
        with self._lock:
            for proc in self.processes:
                if proc.poll() is not None or proc.stdin is None or proc.stdout is None:
                    continue
                try:
                    proc.stdin.write(b"connections\n")
                    proc.stdin.flush()
                    total += int(proc.stdout.readline() or b"0")
                except (OSError, ValueError):
                    continue
        return total

    def close(self, timeout: float = 15.0) -> None:
        for proc in self.processes:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()  # EOF: the worker closes its server and exits
        for proc in self.processes:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self.processes = []


def main() -> None:
    """A worker process: serve the settings read from stdin on the shared port until stdin closes."""
    from voicelab.server.app import Server

    # Ctrl-C in a terminal reaches the whole process group: the parent stops the server (and so this
    # worker, through its stdin), a worker does not stop on its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    size = int.from_bytes(stdin.read(8), "big")
    settings = pickle.loads(stdin.read(size))
    try:
        server = Server(**settings, _reuse_port=True)
    except Exception as exc:  # reported to the parent, which raises it
        stdout.write(f"failed {type(exc).__name__}: {exc}\n".replace("\n", " ").encode() + b"\n")
        stdout.flush()
        return
    stdout.write(b"ready\n")
    stdout.flush()
    try:
        for line in stdin:
            if line.strip() == b"connections":
                stdout.write(f"{server.connections}\n".encode())
                stdout.flush()
    finally:
        server.close()


__all__ = ["MAX_WORKERS", "WorkerPool", "check_workers"]
