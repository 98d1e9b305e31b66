"""The caller's audio on the way to the wire (`voicelab.protocol.wire_audio`), in-process.

A 48 kHz microphone delivers 20 ms chunks; `send_audio` turns them into appends in the session's format. Timed
per chunk over `--seconds` of speech-like audio (a tone with noise), best of `--repeat` passes, against
baselines measured in the same run:

- oneshot_soxr: each chunk resampled alone with soxr (`Audio.resample`, HQ), as `send_audio` did before: the
  baseline for cost (it also leaves a seam at every chunk boundary, counted below as `seam_ratio`);
- stream: `InputStream("pcm16", 48000).push(chunk)` (the chunking-exact streaming resampler);
- appends: `ClientProtocol.audio_appends(chunk, rate=48000)` with the events taken (what `send_audio` does per
  chunk before sending); and at 24 kHz, where nothing is resampled (the usual case), against a replica of
  the old `audio_appends` steps.
- g711_decode: `G711Decoder.decode` of 20 ms A-law deltas against one-shot soxr per delta.

`seam_ratio`: the largest sample-to-sample step of the 24 kHz result divided by the tone's own largest step
(1.0 is seamless; a seam at each boundary shows as a much larger step).

    python bench/bench_wire_audio.py [--seconds 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable

import numpy as np

from voicelab.audio.core import Audio
from voicelab.audio.g711 import alaw_decode, alaw_encode
from voicelab.config import SessionConfig
from voicelab.protocol.client import ClientProtocol
from voicelab.protocol.wire_audio import G711Decoder, InputStream

TONE_HZ = 440.0


def signal(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    noise = np.random.default_rng(0).standard_normal(t.size) * 0.003
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t) + noise).astype(np.float32)


def chunks(samples: np.ndarray, size: int) -> list[np.ndarray]:
    return [samples[i : i + size] for i in range(0, samples.size, size)]


def best_per_item_us(
    items: list[np.ndarray], make: Callable[[], Callable[[np.ndarray], object]], repeat: int
) -> float:
    best = float("inf")
    for _ in range(repeat):
        step = make()
        start = time.perf_counter()
        for item in items:
            step(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def cost_line(metric: str, us: float, baseline_us: float, baseline: str) -> dict[str, object]:
    return {
        "metric": metric,
        "value": round(us / baseline_us, 3),
        "unit": "x",
        "baseline": baseline,
        "us": round(us, 1),
        "baseline_us": round(baseline_us, 1),
    }


def seam_ratio(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)[100:-100]
    own = 0.3 * 32767 * 2 * np.pi * TONE_HZ / 24000 + 0.003 * 32767 * 6
    return float(np.abs(np.diff(samples)).max() / own)


def opened_protocol() -> ClientProtocol:
    protocol = ClientProtocol(SessionConfig())
    protocol.connection_open()
    return protocol


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    mic = chunks(signal(48000, args.seconds), 960)  # 20 ms at 48 kHz
    at24 = chunks(signal(24000, args.seconds), 480)

    def oneshot() -> Callable[[np.ndarray], object]:
        return lambda c: Audio.from_array(c, 48000).to_realtime().to_pcm16()

    def stream() -> Callable[[np.ndarray], object]:
        s = InputStream("pcm16", 48000)
        return s.push

    def appends() -> Callable[[np.ndarray], object]:
        protocol = opened_protocol()
        return lambda c: list(protocol.audio_appends(c, rate=48000))

    def appends24() -> Callable[[np.ndarray], object]:
        protocol = opened_protocol()
        return lambda c: list(protocol.audio_appends(c, rate=24000))

    def before24() -> Callable[[np.ndarray], object]:
        # the old audio_appends at 24 kHz: convert the whole clip, then base64 per 100 ms append
        protocol = opened_protocol()

        def step(c: np.ndarray) -> object:
            pcm24 = Audio.from_array(c, 24000).to_realtime().to_pcm16()
            return [
                (protocol._append(base64.b64encode(pcm24[o : o + 4800]).decode("ascii")), pcm24[o : o + 4800])
                for o in range(0, len(pcm24), 4800)
            ]

        return step

    base = best_per_item_us(mic, oneshot, args.repeat)
    streamed = best_per_item_us(mic, stream, args.repeat)
    sent = best_per_item_us(mic, appends, args.repeat)
    base24 = best_per_item_us(at24, before24, args.repeat)
    sent24 = best_per_item_us(at24, appends24, args.repeat)
    old_pcm = b"".join(oneshot()(c) for c in mic)  # type: ignore[misc]
    s = InputStream("pcm16", 48000)
    new_pcm = b"".join(s.push(c)[0] for c in mic) + s.flush()[0]
    common = {"bench": "wire_audio", "chunk_ms": 20, "seconds": args.seconds, "repeat": args.repeat}
    lines = [
        cost_line(
            "mic48k_stream_per_chunk", streamed, base, "one-shot soxr HQ per chunk (the old send_audio)"
        ),
        cost_line("mic48k_appends_per_chunk", sent, base, "one-shot soxr HQ per chunk"),
        cost_line(
            "mic24k_appends_per_chunk",
            sent24,
            base24,
            "the old audio_appends' steps (whole-clip conversion, base64 per append), same run",
        ),
        {
            "metric": "mic48k_seam_ratio",
            "value": round(seam_ratio(new_pcm), 3),
            "unit": "x the tone's own step",
            "before": round(seam_ratio(old_pcm), 3),
        },
    ]
    tone8 = signal(8000, args.seconds)
    deltas = [alaw_encode(c) for c in chunks(tone8, 160)]

    def old_decode() -> Callable[[bytes], object]:
        return lambda d: Audio.from_array(alaw_decode(d), 8000).to_realtime().to_pcm16()

    def new_decode() -> Callable[[bytes], object]:
        return G711Decoder("g711_alaw").decode

    old_us = best_per_item_us(deltas, old_decode, args.repeat)  # type: ignore[arg-type]
    new_us = best_per_item_us(deltas, new_decode, args.repeat)  # type: ignore[arg-type]
    decoder = G711Decoder("g711_alaw")
    new_out = b"".join(decoder.decode(d) for d in deltas)
    old_out = b"".join(old_decode()(d) for d in deltas)  # type: ignore[misc]
    lines += [
        cost_line(
            "g711_decode_per_delta", new_us, old_us, "one-shot soxr per 20 ms delta (the old decoding)"
        ),
        {
            "metric": "g711_seam_ratio",
            "value": round(seam_ratio(new_out), 3),
            "unit": "x the tone's own step",
            "before": round(seam_ratio(old_out), 3),
        },
    ]
    for line in lines:
        print(json.dumps({**common, **line}), flush=True)


if __name__ == "__main__":
    main()
