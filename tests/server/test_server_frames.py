"""Server frames are encoded with orjson: the same values as json.dumps, NaN and big ints kept."""

from __future__ import annotations

import json
import math

import pytest

from voicelab.server.app import dump_event

CASES = [
    {"type": "response.output_audio.delta", "delta": "AAAA", "output_index": 0, "previous_item_id": None},
    {"type": "x", "text": 'é 😀 \u2028 \x7f "q" \\', "f": [1e-7, 1e16, 0.1, -0.0], "ok": True},
    {"type": "x", "big": 2**70},
    {"type": "x", 1: "non-str key"},
    {"type": "x", "nested": [{"v": float("nan")}], "inf": float("inf")},
]


@pytest.mark.parametrize("event", CASES, ids=range(len(CASES)))
def test_frames_carry_the_values_json_dumps_would(event: dict) -> None:
    got, expected = json.loads(dump_event(event)), json.loads(json.dumps(event))
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_non_finite_numbers_stay_non_finite() -> None:
    got = json.loads(dump_event({"type": "x", "nested": [{"v": float("nan")}], "inf": float("inf")}))
    assert math.isnan(got["nested"][0]["v"]) and got["inf"] == float("inf")
