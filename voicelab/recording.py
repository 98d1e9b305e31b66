"""A session on disk: `meta.json`, append-only `events.jsonl`, `input.wav` and `output.wav` on one clock.

Crash safety: each WAV gets its header up front (sizes patched on close) and `load_recording` derives the
sizes from the file length, so a killed process leaves a readable recording. By default every events line and
every sample is handed to the OS as written. With `flush_ms` (what a Session uses), the high-rate lines (audio
appends and deltas, transcript and text deltas) and their audio are buffered and written together at most
`flush_ms` later, in two system calls instead of two per event; any other event writes everything buffered
with it at once. A killed process then loses at most the last `flush_ms` of deltas, never a control event,
and what is on disk stays readable (audio is written before the lines that refer to it).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:  # the hot lines (deltas) are encoded with orjson when its bytes are exactly the stdlib encoder's
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib encoder is the reference
    orjson = None  # type: ignore[assignment]

from voicelab.audio.b64 import b64decode
from voicelab.audio.core import Audio
from voicelab.checks import checked, path_arg
from voicelab.errors import ConfigError
from voicelab.events import AppEvent

RATE = 24000
_BYTES_PER_MS = RATE * 2 / 1000.0
_HEADER_SIZE = 44
_WRITEV_MAX = 512  # buffers per writev call (IOV_MAX is 1024 on Linux and macOS)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)  # one encoder, not one per line
# Where orjson's output may differ from _ENCODER's, looked for only in number tokens (after `:`, `,` or `[`;
# ids like "item_1e4f" are not numbers): floats under 1e-4 or from 1e16 (Python writes 1e-05 and 1e+16), NaN
# and infinities (orjson writes null), and characters from U+007F up (the stdlib escapes them). A line that
# matches (a string holding such text too) or that orjson refuses (big ints, non-str keys, other types) is
# encoded by _ENCODER.
_ORJSON_MAY_DIFFER = re.compile(rb"[:,\[]-?\d[\d.]*[eE]|[:,\[]-?0\.0000|[:,\[]null")
_ORJSON_OPTIONS = (
    0
    if orjson is None
    else orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


_HOT_DIRECTIONS = frozenset({"server", "client"})
_NEWLINE = 0 if orjson is None else orjson.OPT_APPEND_NEWLINE


def _orjson_body(value: Any) -> str | None:
    """orjson's encoding of `value` when it is byte for byte the stdlib encoder's, else None: orjson refuses
    what it cannot vouch for (big ints, non-str keys, other types, passed through), and its output is checked
    for what may differ (non-ASCII, DEL, exponents, tiny floats, null from NaN)."""
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:
        return None
    if out.isascii() and b"\x7f" not in out and _ORJSON_MAY_DIFFER.search(out) is None:
        return out.decode("ascii")
    return None


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def _flat(event: dict[str, Any]) -> bool:
    """True when every value of `event` is a str, an int, a bool or None: orjson then writes what the
    stdlib writes, apart from non-ASCII text (checked on the output) and ints beyond 64 bits (which orjson
    refuses). Nested values and floats are left to the output check of the general path."""
    return _FLAT_TYPES.issuperset(map(type, event.values()))


# t * 1000 below this (t under ~12.7 days in ms) is within 2**-13 of the exact product: see _round_ms
_EXACT_THOUSANDTHS = float(2**40)


def _exact_thousandths(t: Any) -> float | None:
    """``round(t, 3)`` for a Python float t in (0, ~1.1e9) not within 0.001 of a tie, in a third of the time;
    None for anything else (an int or numpy number, near a tie, beyond the bound, 0, negative, NaN, infinite).
    The float returned is k / 1000 with 0 < k < 2**40: both encoders write it alike (repr).

    x = t * 1000.0 is within half an ulp (at most 2**-13 below 2**40) of the exact product, so when x is at
    most 0.499 from the integer k, the exact product is less than 0.5 from k: k is t correctly rounded to
    thousandths, which is what ``round(t, 3)`` computes (on the exact binary value) before returning the float
    nearest k / 1000, and the true division of two ints below 2**53 is that same correctly rounded float."""
    if type(t) is not float:  # round() keeps an int an int and a numpy float a numpy float
        return None
    x = t * 1000.0
    if 0.0 < x < _EXACT_THOUSANDTHS:
        k = round(x)
        if -0.499 < x - k < 0.499:
            return k / 1000
    return None


def _round_ms(t: float) -> float:
    """``round(t, 3)``, the same value, faster for a session's times (see _exact_thousandths)."""
    exact = _exact_thousandths(t)
    return round(t, 3) if exact is None else exact


def _start_ms(start_bytes: int) -> float:
    """``round(start_bytes / _BYTES_PER_MS, 3)`` (a track position in ms), the same float, from integers.

    start_bytes / 48 ms is start_bytes * 125 / 6 thousandths; for an even count (a track only ever holds whole
    samples) its fractional part is 0, 1/3 or 2/3, never a tie, and the float quotient is far closer to the
    exact one than the 1/6 thousandth to the nearest tie, so the rounding is (start_bytes * 125 + 3) // 6
    thousandths, and int / 1000 is the float ``round`` returns (see _round_ms)."""
    if not start_bytes & 1 and 0 <= start_bytes < 1 << 40:
        return (start_bytes * 125 + 3) // 6 / 1000
    return round(start_bytes / _BYTES_PER_MS, 3)


def _hot_line(t_ms: float, direction: str, event_type: str, event: dict[str, Any]) -> str | None:
    """The line of a high-rate wire event, byte for byte the stdlib encoder's, built around orjson's
    encoding of the event; None when that cannot be vouched for."""
    if direction not in _HOT_DIRECTIONS or event_type not in BUFFERED_TYPES or orjson is None:
        return None
    if type(t_ms) is not float and type(t_ms) is not int:  # e.g. a numpy float: its repr is not JSON
        return None
    if t_ms != t_ms or t_ms in (math.inf, -math.inf):  # the stdlib writes NaN/Infinity
        return None
    body = _orjson_body(event)
    if body is None:
        return None
    # the record's other fields are plain ASCII words and a number, written as the stdlib writes them
    return f'{{"t_ms":{t_ms!r},"dir":"{direction}","type":"{event_type}","event":{body}}}\n'


def encode_line(record: dict[str, Any]) -> str:
    """One events.jsonl line (with its newline), byte for byte what ``_ENCODER`` writes: orjson (5-30x
    faster) when its output provably matches, else the stdlib encoder."""
    if orjson is not None:
        body = _orjson_body(record)
        if body is not None:
            return body + "\n"
    return _ENCODER.encode(record) + "\n"


AUDIO_FIELDS = {
    "input_audio_buffer.append": ("audio", "input"),
    "response.output_audio.delta": ("delta", "output"),
}
SESSION_FLUSH_MS = 50.0  # a Session's recording: deltas reach the disk at most this late
# lines a buffered writer may hold back (the high-rate events); any other line flushes the buffers
BUFFERED_TYPES = frozenset(
    {
        "input_audio_buffer.append",
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
        "conversation.item.input_audio_transcription.delta",
    }
)


DEFAULT_RECORDINGS = Path("recordings")


def default_record_dir(root: str | os.PathLike[str] = DEFAULT_RECORDINGS) -> Path:
    """A new folder name under `root` for a session's recording: local time to the microsecond, then a random
    suffix, so two sessions opened in the same microsecond (or a notebook run again) never share a folder,
    and names still sort by time. E.g. recordings/20260101-120000-123456-3fa2c1."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(root) / f"{stamp}-{secrets.token_hex(3)}"


def check_record_dir(record_dir: object) -> None:
    """Raise ConfigError unless `record_dir` can be a recording folder: None/True (a new default folder),
    False (no recording), or a path that is not a file and not under one."""
    if record_dir is None or isinstance(record_dir, bool):
        return
    if not isinstance(record_dir, (str, os.PathLike)):
        raise ConfigError(
            f"record_dir must be a folder path (str or Path), True/None for a new folder under ./recordings, "
            f"or False to record nothing; got {type(record_dir).__name__}."
        )
    path = Path(record_dir)
    if str(record_dir) == "":
        raise ConfigError("record_dir is an empty path; pass a folder path, or None for ./recordings/<time>.")
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(
                    f"record_dir {str(path)!r} cannot be created: {str(folder)!r} is a file. Pass a folder "
                    "path that is not a file or inside one."
                )
            break


def _wav_header(data_bytes: int) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
        + b"data"
        + struct.pack("<I", min(data_bytes, 0xFFFFFFFF))
    )


class _Track:
    """A mono PCM16 24 kHz WAV written on the session clock; gaps are silence."""

    def __init__(self, path: Path, buffered: bool = False) -> None:
        self.path = path
        # unbuffered: every write reaches the OS at once (crash-safe) in one system call, no flush needed;
        # `buffered`: samples wait in `_pending` for flush()
        self._file: IO[bytes] = open(path, "w+b", buffering=0)  # noqa: SIM115 - kept open for the session
        self._file.write(_wav_header(0))
        self.bytes = 0  # PCM bytes after the header (written or pending)
        self._pos = _HEADER_SIZE  # the file position, so that appends need no seek
        self._buffered = buffered
        # the last bytes of `bytes`, not written yet: the chunks as received (flush hands them to the OS with
        # writev, so a delta's samples are copied once, by the kernel)
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write_at(self, t_ms: float, pcm: bytes) -> tuple[float, float]:
        """Place `pcm` at `t_ms`, or right after what is already there; returns (start_ms, duration_ms)."""
        if self._buffered:
            start = self.hold(t_ms, pcm)
            return start / _BYTES_PER_MS, (self.bytes - start) / _BYTES_PER_MS
        target = round(t_ms * RATE / 1000.0) * 2
        if len(pcm) % 2:
            pcm = pcm[:-1]
        start = self.bytes
        if self._pos != _HEADER_SIZE + self.bytes:
            self._file.seek(_HEADER_SIZE + self.bytes)
        if target > start:  # silence up to t_ms, written with the audio in one call
            pcm = bytes(target - start) + pcm
            start = target
        self._write_all(pcm)
        self.bytes += len(pcm)
        self._pos = _HEADER_SIZE + self.bytes
        return start / _BYTES_PER_MS, (self.bytes - start) / _BYTES_PER_MS

    def hold(self, t_ms: float, pcm: bytes) -> int:
        """A buffered track's `write_at`: `pcm` (its whole samples) held for flush() at `t_ms`, or right after
        what is already there; returns where it starts, in bytes after the header (an even count)."""
        target = round(t_ms * RATE / 1000.0) * 2
        if len(pcm) % 2:
            pcm = pcm[:-1]
        start = self.bytes
        if target > start:  # silence up to t_ms
            self._pending.append(bytes(target - start))
            self._pending_bytes += target - start
            start = target
        self._pending.append(pcm if type(pcm) is bytes else bytes(pcm))  # held: never a mutable buffer
        self._pending_bytes += len(pcm)
        self.bytes = start + len(pcm)
        return start

    def flush(self) -> None:
        """Write the pending samples (one system call)."""
        if not self._pending:
            return
        at = _HEADER_SIZE + self.bytes - self._pending_bytes
        if self._pos != at:
            self._file.seek(at)
        self._write_chunks(self._pending)
        self._pending = []
        self._pending_bytes = 0
        self._pos = _HEADER_SIZE + self.bytes

    def _write_chunks(self, chunks: list[bytes]) -> None:
        """Write `chunks` in order at the file position: os.writev where there is one (a partial write goes
        on from where it stopped), else one joined write."""
        if not hasattr(os, "writev"):
            self._write_all(b"".join(chunks))
            return
        fd = self._file.fileno()
        for first in range(0, len(chunks), _WRITEV_MAX):
            batch: list[bytes | memoryview] = [c for c in chunks[first : first + _WRITEV_MAX] if c]
            total = sum(map(len, batch))
            while batch:
                written = os.writev(fd, batch)
                total -= written
                if not total:  # all of it (the usual case)
                    break
                done = 0
                while done < len(batch) and written >= len(batch[done]):
                    written -= len(batch[done])
                    done += 1
                del batch[:done]
                if batch and written:  # the rest of a partly written chunk
                    batch[0] = memoryview(batch[0])[written:]

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a raw write may be partial
            written = self._file.write(view)
            view = view[written or 0 :]

    def cut(self, at_ms: float) -> None:
        """Drop everything after `at_ms` (audio received but never played)."""
        at = max(0, round(at_ms * RATE / 1000.0) * 2)
        if at < self.bytes:
            self.flush()
            self._file.truncate(_HEADER_SIZE + at)
            self.bytes = at

    @property
    def end_ms(self) -> float:
        return self.bytes / _BYTES_PER_MS

    def close(self) -> None:
        if self._file.closed:
            return
        self.flush()
        self._file.seek(0)
        self._write_all(_wav_header(self.bytes))
        self._file.close()


class RecordingWriter:
    """Writes one session folder. Not thread-safe; the Session calls it from its event loop."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Callable[[], float] = time.monotonic,
        flush_ms: float = 0.0,
    ) -> None:
        if not isinstance(flush_ms, (int, float)) or isinstance(flush_ms, bool) or not 0 <= flush_ms <= 1000:
            raise ConfigError(
                f"flush_ms must be a number of ms from 0 (write at once) to 1000, got {flush_ms!r}"
            )
        self.path = Path(path)
        if (self.path / "events.jsonl").exists():
            raise ConfigError(
                f"{self.path} already holds a recording; pass a new record_dir (or delete the old folder)."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.clock = clock  # the session clock: t_ms() is (clock() - origin) * 1000
        self.origin = clock()
        self._events: IO[str] = open(self.path / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.flush_ms = float(flush_ms)
        self.input = _Track(self.path / "input.wav", buffered=flush_ms > 0)
        self.output = _Track(self.path / "output.wav", buffered=flush_ms > 0)
        self.closed = False
        self._lines: list[str] = []  # held-back lines (buffered mode)
        self._flushed_at = self.clock()

    def t_ms(self) -> float:
        """Milliseconds since the recording started (the session clock)."""
        return (self.clock() - self.origin) * 1000.0

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write (or replace) meta.json atomically."""
        tmp = self.path / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.path / "meta.json")

    def _line(
        self,
        t_ms: float,
        direction: str,
        event_type: str,
        event: dict[str, Any],
        wire: bool = False,
    ) -> None:
        if self.closed:
            return
        t = _round_ms(t_ms)
        # the high-rate wire lines take the fast encoders; the bytes are the stdlib encoder's
        line = _hot_line(t, direction, event_type, event) if wire else None
        if line is None:
            record = {"t_ms": t, "dir": direction, "type": event_type, "event": event}
            fast = wire and event_type in BUFFERED_TYPES
            line = encode_line(record) if fast else _ENCODER.encode(record) + "\n"
        if self.flush_ms <= 0:
            self._events.write(line)
            self._events.flush()
            return
        self._lines.append(line)
        if event_type not in BUFFERED_TYPES or (self.clock() - self._flushed_at) * 1000.0 >= self.flush_ms:
            self.flush()

    def flush(self) -> None:
        """Hand everything buffered to the OS: the audio first, then the lines that refer to it."""
        self._flushed_at = self.clock()
        if self.closed:
            return
        self.input.flush()
        self.output.flush()
        if self._lines:
            self._events.write("".join(self._lines))
            self._lines.clear()
            self._events.flush()

    def record_wire(
        self, direction: str, event: dict[str, Any], pcm: bytes | None = None, t_ms: float | None = None
    ) -> dict[str, Any]:
        """Record a client or server event; audio payloads go to their track and become `$audio` refs.

        `pcm` is the PCM16 24 kHz audio of an append/delta (decoded from base64 when not given). Returns the
        event as recorded.
        """
        t = self.t_ms() if t_ms is None else t_ms
        if (
            self.flush_ms > 0
            and direction in _HOT_DIRECTIONS
            and str(event.get("type")) in BUFFERED_TYPES
            and _flat(event)
        ):
            return self.record_delta(event, t, pcm, direction)  # a buffered writer's one-piece line
        return self._record_general(direction, event, pcm, t)

    def _record_general(
        self, direction: str, event: dict[str, Any], pcm: bytes | None, t: float
    ) -> dict[str, Any]:
        """`record_wire` of any event, the general way."""
        event_type = str(event.get("type"))
        spec = AUDIO_FIELDS.get(event_type)
        if spec is not None and isinstance(event.get(spec[0]), str):
            key, track_name = spec
            if pcm is None:
                pcm = b64decode(event[key])
            track = self.input if track_name == "input" else self.output
            start, duration = track.write_at(t, pcm) if not self.closed else (t, len(pcm) / _BYTES_PER_MS)
            event = {
                **event,
                key: {"$audio": {"track": track_name, "start_ms": round(start, 3), "duration_ms": duration}},
            }
        self._line(t, direction, event_type, event, wire=True)
        return event

    def record_delta(
        self, event: dict[str, Any], t_ms: float, pcm: bytes | None = None, direction: str = "server"
    ) -> dict[str, Any]:
        """``record_wire(direction, event, pcm, t_ms)`` of an event whose every value the caller has checked
        to be a str, an int, a bool or None (exact types; ClientProtocol's valid deltas with no other field
        are): the same line and audio, without checking the values again. A buffered writer records the
        high-rate ones (BUFFERED_TYPES) in one piece: audio held on its track, the line one orjson call, byte
        for byte the stdlib encoder's (the bulk of a session's lines). Returns the event as recorded."""
        event_type = event["type"]
        if event_type not in BUFFERED_TYPES or self.flush_ms <= 0 or self.closed or orjson is None:
            return self._record_general(direction, event, pcm, t_ms)
        t_line = _exact_thousandths(t_ms)  # round(t_ms, 3) where both encoders write it alike
        if t_line is None:  # the general path rounds (and writes) anything else
            return self._record_general(direction, event, pcm, t_ms)
        spec = AUDIO_FIELDS.get(event_type)
        if spec is not None:
            key, track_name = spec
            audio = event.get(key)
            if type(audio) is not str:
                return self._record_general(direction, event, pcm, t_ms)
            if pcm is None:
                pcm = b64decode(audio)
            track = self.input if track_name == "input" else self.output
            start = track.hold(t_ms, pcm)
            # both 0 or at least 0.001 ms (whole samples): plain unless absurdly far along the track
            start_ms, duration = _start_ms(start), (track.bytes - start) / _BYTES_PER_MS
            event = {
                **event,
                key: {"$audio": {"track": track_name, "start_ms": start_ms, "duration_ms": duration}},
            }
            if start_ms + duration >= 1e15:
                self._line(t_ms, direction, event_type, event, wire=True)  # the general encoders decide
                return event
        # the whole line in one orjson call (its float is t_line, written as repr writes it)
        record = {"t_ms": t_line, "dir": direction, "type": event_type, "event": event}
        try:
            out: bytes | None = orjson.dumps(record, option=_NEWLINE)
        except TypeError:  # a lone surrogate in a string, an int beyond 64 bits
            out = None
        if out is not None and out.isascii() and b"\x7f" not in out:
            line = out.decode("ascii")
        else:  # non-ASCII text (the stdlib escapes it) or a string orjson refuses
            line = _ENCODER.encode(record) + "\n"
        self._lines.append(line)
        if (self.clock() - self._flushed_at) * 1000.0 >= self.flush_ms:
            self.flush()
        return event

    def record_app(self, event: AppEvent, t_ms: float | None = None) -> None:
        """Record an app event (skipped for types that only repeat wire events, e.g. audio)."""
        if event.recorded:
            self._line(self.t_ms() if t_ms is None else t_ms, "app", event.type, event.to_record())

    def cut_output(self, at_ms: float) -> None:
        """Drop output audio after `at_ms` on the session clock (an interruption: it was never played)."""
        if not self.closed:
            self.flush()
            self.output.cut(at_ms)

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._events.close()
        self.input.close()
        self.output.close()


@dataclass
class Recording:
    """A loaded session folder."""

    path: Path
    meta: dict[str, Any]
    events: list[dict[str, Any]]
    input: Audio
    output: Audio

    def __post_init__(self) -> None:
        self.path = path_arg(self.path, "path", example="'recordings/<time>'", where="Recording")
        for name, value, kind in (("meta", self.meta, dict), ("events", self.events, list)):
            if not isinstance(value, kind):
                raise ConfigError(
                    f"Recording {name} must be a {kind.__name__}, got {type(value).__name__}; load a "
                    "recording with voicelab.load_recording(path)"
                )
        for track, audio in (("input", self.input), ("output", self.output)):
            if audio is not None and not isinstance(audio, Audio):  # None: a track not loaded
                raise ConfigError(
                    f"Recording {track} must be an Audio (or None), got {type(audio).__name__}; load a "
                    "recording with voicelab.load_recording(path)"
                )

    def __repr__(self) -> str:
        return (
            f"Recording(path={str(self.path)!r}, events={len(self.events)}, "
            f"input_ms={self.input.duration_ms:.0f}, output_ms={self.output.duration_ms:.0f})"
        )


def read_wav_tolerant(path: Path) -> Audio:
    """Read a mono PCM16 24 kHz WAV, trusting the file length over header sizes (crash-safe)."""
    raw = path.read_bytes() if path.exists() else b""
    if not raw:
        return Audio.from_pcm16(b"", RATE, allow_empty=True)
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ConfigError(
            f"{path} is not a WAV file; the recording is damaged (expected a RIFF/WAVE header)."
        )
    offset, rate, data = 12, RATE, b""
    while offset + 8 <= len(raw):
        chunk_id, size = raw[offset : offset + 4], struct.unpack("<I", raw[offset + 4 : offset + 8])[0]
        body = offset + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", raw[body : body + 8])
            bits = struct.unpack("<H", raw[body + 14 : body + 16])[0]
            if (fmt, channels, bits) != (1, 1, 16):
                raise ConfigError(f"{path} is not mono PCM16; voicelab recordings always are.")
        elif chunk_id == b"data":
            end = len(raw) if size == 0 or body + size > len(raw) else body + size
            data = raw[body:end]
            break
        offset = body + size + (size & 1)
    if len(data) % 2:
        data = data[:-1]
    return Audio.from_pcm16(data, rate, allow_empty=True)


def input_origin_ms(events: list[dict[str, Any]]) -> float | None:
    """Where the first appended input audio sits on the session clock (server VAD's `audio_*_ms` count
    from there), or None when the session sent no audio."""
    for line in events:
        if line.get("dir") == "client" and line.get("type") == "input_audio_buffer.append":
            ref = (line.get("event") or {}).get("audio")
            if isinstance(ref, dict) and isinstance(ref.get("$audio"), dict):
                return float(ref["$audio"].get("start_ms", line.get("t_ms", 0.0)))
            return float(line.get("t_ms", 0.0))
    return None


def recording_folder(path: str | os.PathLike[str]) -> Path:
    """The recording folder at `path` (a folder, or its events.jsonl), checked to hold a recording."""
    folder = path_arg(path, "recording", example="'recordings/<time>' (session.recording_path)")
    if folder.is_file() and folder.name == "events.jsonl":
        folder = folder.parent
    if not folder.exists():
        raise ConfigError(
            f"recording folder {folder} does not exist; pass the folder a session recorded into "
            "(session.recording_path)."
        )
    if not folder.is_dir() or not (folder / "events.jsonl").is_file():
        raise ConfigError(
            f"{folder} is not a voicelab recording (no events.jsonl); pass a folder from "
            "session.recording_path or ./recordings/<timestamp>."
        )
    return folder


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A recording's meta.json ({} when a killed session never wrote it)."""
    meta_path = recording_folder(path) / "meta.json"
    if not meta_path.is_file():
        return {}
    try:
        loaded = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{meta_path} is not valid JSON ({exc}): restore or delete the file") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{meta_path} holds a JSON {type(loaded).__name__}, not an object; restore the file (or delete "
            "it: a recording without meta.json still loads)"
        )
    return loaded


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A recording's events.jsonl, without touching its audio tracks. A last line cut short by a killed
    process is skipped; a damaged line elsewhere is an error naming it."""
    events_path = recording_folder(path) / "events.jsonl"
    with events_path.open("rb") as fh:
        lines = fh.read().split(b"\n")
    events: list[dict[str, Any]] = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number >= last - 1 and not line.rstrip().endswith(b"}"):
                break  # the last line of a killed or still running session, not written completely
            raise ConfigError(
                f"{events_path} line {number + 1} is not valid JSON ({exc}): the recording is damaged; "
                "remove that line"
            ) from exc
        if isinstance(record, dict):
            events.append(record)
    return events


@checked
def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Load a session folder written by RecordingWriter (also one left by a killed process)."""
    folder = recording_folder(path)
    return Recording(
        path=folder,
        meta=read_meta(folder),
        events=read_events(folder),
        input=read_wav_tolerant(folder / "input.wav"),
        output=read_wav_tolerant(folder / "output.wav"),
    )


__all__ = [
    "DEFAULT_RECORDINGS",
    "SESSION_FLUSH_MS",
    "Recording",
    "RecordingWriter",
    "check_record_dir",
    "default_record_dir",
    "input_origin_ms",
    "load_recording",
    "read_events",
    "read_meta",
    "read_wav_tolerant",
    "recording_folder",
]
