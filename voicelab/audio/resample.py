"""A low-latency streaming resampler for the VAD front end: rational-ratio polyphase FIR, chunking-exact.

The VAD scores 16 kHz frames, so a 24 kHz call is resampled before the model sees it. ``soxr``'s streaming
resampler processes in blocks: at 24 -> 16 kHz with 40 ms chunks its output trails the input by 7-35 ms
(22 ms on average), and a frame that the audio already covers is scored one chunk later. Every
``speech_stopped`` waited for that. ``VadResampler`` holds back only the filter's half length (26 input
samples at 24 kHz: 1.1 ms).

Output sample ``n`` sits at time ``n / output_rate`` (no delay: a linear-phase filter centred on it); the
input before the stream and after its end (``last=True``) is zeros; a stream of ``k`` input samples gives
``ceil(k * output_rate / input_rate)`` output samples. Each output is computed from the same samples with
the same operations (one ``einsum`` row: the products summed in the filter's order) whatever the chunking, so
the output of any chunking equals the output of the whole signal bit for bit: streaming VAD still equals
offline VAD exactly.

The filter: a Kaiser-windowed sinc (beta 7) at ``L x input_rate`` for the reduced ratio ``L / M``, cut off
at 95% of the lower Nyquist frequency, ``TAPS_PER_PHASE x max(L, M)`` taps (+1, odd, so the centre is a
sample). At 24 -> 16 kHz it passes 0-6.5 kHz within 0.1 dB (-1.6 dB at 7.2 kHz, -15 dB at 8 kHz, under
-40 dB from 8.5 kHz): enough for a VAD, whose turn accuracy it keeps (bench/bench_vad.py: the same turn
counts, medians within a millisecond). ``Audio.resample`` keeps soxr HQ for listening.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from voicelab.errors import ConfigError

TAPS_PER_PHASE = 32
CUTOFF = 0.95  # of the lower Nyquist frequency
KAISER_BETA = 7.0
_PHASE_LOOP_MAX = 8  # up to this many phases, each phase is a strided view (no gather)


def _design(up: int, down: int) -> tuple[np.ndarray, int]:
    taps = TAPS_PER_PHASE * max(up, down) + 1
    cutoff = CUTOFF * 0.5 / max(up, down)  # cycles per sample at the upsampled rate
    t = np.arange(taps) - (taps - 1) // 2
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(taps, KAISER_BETA)
    return h * (up / h.sum()), (taps - 1) // 2


class VadResampler:
    """Streaming ``input_rate`` -> ``output_rate`` resampling; ``resample_chunk`` as soxr's ResampleStream."""

    def __init__(self, input_rate: int, output_rate: int) -> None:
        for name, rate in (("input_rate", input_rate), ("output_rate", output_rate)):
            if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
                raise ConfigError(f"{name} must be a positive integer sample rate in Hz, got {rate!r}")
        g = math.gcd(input_rate, output_rate)
        self.up, self.down = output_rate // g, input_rate // g
        h, centre = _design(self.up, self.down)
        up, down = self.up, self.down
        # output n = q*up + p uses inputs j0(n) .. j0(n) + width - 1, j0(n) = q*down + first[p]
        self.width = -(-len(h) // up) + 1
        rows = np.zeros((up, self.width), dtype=np.float32)
        first = np.zeros(up, dtype=np.int64)
        for p in range(up):
            u = p * down + centre
            j0 = -((len(h) - 1 - u) // up)  # ceil((u - len(h) + 1) / up)
            first[p] = j0
            for k in range(self.width):
                index = u - (j0 + k) * up
                if 0 <= index < len(h):
                    rows[p, k] = h[index]
        self._rows = rows
        self._phase_rows = [rows[p] for p in range(up)]
        self._first = first
        self._first_list = [int(v) for v in first]
        self._x = np.zeros(0, dtype=np.float32)  # the input still needed; _x[0] is input sample _x0
        self._x0 = 0
        self._n = 0  # outputs produced
        self._total = 0  # input samples received
        self._done = False

    @property
    def lookahead(self) -> int:
        """Input samples an output waits for beyond its own time (about the filter's half length)."""
        own = np.arange(self.up) * self.down / self.up  # output p's time, in input samples
        return math.ceil(float(np.max(self._first + self.width - 1 - own)))

    def _start(self, n: int) -> int:
        return (n // self.up) * self.down + self._first_list[n % self.up]

    def resample_chunk(self, data: np.ndarray, last: bool = False) -> np.ndarray:
        if self._done:
            return np.zeros(0, dtype=np.float32)
        data = np.asarray(data, dtype=np.float32).reshape(-1)
        self._total += len(data)
        x = np.concatenate([self._x, data]) if len(self._x) else data
        up, down, width = self.up, self.down, self.width
        if last:
            self._done = True
            end = -(-self._total * up // down)  # outputs of the whole stream
        else:
            # the outputs whose inputs have all arrived: start(n) + width <= total
            end = max(self._n, (self._total - width) * up // down)
            while end > self._n and self._start(end - 1) + width > self._total:
                end -= 1
            while self._start(end) + width <= self._total:
                end += 1
        count = end - self._n
        if count <= 0:
            self._trim(x)
            return np.zeros(0, dtype=np.float32)
        # the inputs outputs self._n .. end-1 read, zeros outside the stream
        lo = self._start(self._n)
        hi = self._start(end - 1) + width
        front = max(0, self._x0 - lo)
        back = max(0, hi - (self._x0 + len(x)))
        span = x[max(0, lo - self._x0) : hi - self._x0]
        if front or back:
            span = np.concatenate([np.zeros(front, dtype=np.float32), span, np.zeros(back, dtype=np.float32)])
        span = np.ascontiguousarray(span)
        step = span.strides[0]
        out = np.empty(count, dtype=np.float32)
        if up <= _PHASE_LOOP_MAX:
            for p in range(up):
                # outputs n = self._n + i with n % up == p: their windows start `down` inputs apart
                i0 = (p - self._n) % up
                if i0 >= count:
                    continue
                first = self._start(self._n + i0) - lo
                rows = as_strided(
                    span[first:], shape=((count - i0 + up - 1) // up, width), strides=(down * step, step)
                )
                out[i0::up] = np.einsum("ij,j->i", rows, self._phase_rows[p])
        else:
            windows = as_strided(span, shape=(len(span) - width + 1, width), strides=(step, step))
            ns = np.arange(self._n, end)
            phase = ns % up
            starts = (ns // up) * down + self._first[phase] - lo
            out[:] = np.einsum("ij,ij->i", windows[starts], self._rows[phase])
        self._n = end
        self._trim(x)
        return out

    def _trim(self, x: np.ndarray) -> None:
        """Keep only the inputs a later output still reads."""
        keep = self._start(self._n) - self._x0
        if keep > 0:
            x = x[keep:]
            self._x0 += keep
        self._x = x.copy() if x.base is not None and len(x) < 4096 else x


__all__ = ["VadResampler"]
