"""voicelab.protocol.wire_audio: the formats' bytes per ms and the caller's audio as one stream."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from voicelab.protocol.wire_audio import G711_BYTES_PER_MS, PCM16_BYTES_PER_MS, InputStream, bytes_per_ms


def test_bytes_per_ms_reads_every_spelling_of_a_format() -> None:
    for g711 in ("g711_ulaw", "audio/pcma", {"type": "audio/pcmu"}, SimpleNamespace(type="audio/pcma")):
        assert bytes_per_ms(g711) == G711_BYTES_PER_MS
    for pcm in ("pcm16", {"type": "audio/pcm", "rate": 24000}, SimpleNamespace(type="audio/pcm"), None, {}):
        assert bytes_per_ms(pcm) == PCM16_BYTES_PER_MS


def test_a_g711_stream_keeps_its_24_khz_copy_until_wire_bytes_carry_it() -> None:
    stream = InputStream("g711_ulaw", 24000)
    tiny = np.zeros(12, np.float32)  # 0.5 ms: the 8 kHz resampler holds all of it back
    assert stream.push(tiny) == (b"", b"")
    wire, pcm24 = stream.push(np.zeros(2400, np.float32))  # 100 ms more
    tail_wire, tail_pcm24 = stream.flush()
    assert len(pcm24) + len(tail_pcm24) == (12 + 2400) * 2  # every 24 kHz sample, none twice
    assert len(wire) + len(tail_wire) == (12 + 2400) // 3
