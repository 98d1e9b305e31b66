"""voicelab.audio.b64: the stdlib's results and errors, through pybase64 where it is sure."""

from __future__ import annotations

import base64
import random

import pytest

from voicelab.audio import b64


def test_round_trips_like_the_stdlib() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 300))
        text = base64.b64encode(data).decode("ascii")
        assert b64.b64encode(data) == text
        assert b64.b64encode(bytearray(data)) == text and b64.b64encode(memoryview(data)) == text
        assert b64.b64decode(text) == data and b64.b64decode(text, validate=True) == data
        assert b64.b64decode(text.encode()) == data


LENIENT = ["YWJj\n", "YW Jj", "YR==", "YWJj====", "====", "ab!c", "abc", "YQ", "Y===", "é", "", "YWJ="]


@pytest.mark.parametrize("text", LENIENT)
@pytest.mark.parametrize("validate", [False, True])
def test_odd_input_decodes_or_fails_as_the_stdlib_does(text: str, validate: bool) -> None:
    try:
        expected: object = base64.b64decode(text, validate=validate)
    except Exception as exc:
        expected = (type(exc), str(exc))
    try:
        got: object = b64.b64decode(text, validate=validate)
    except Exception as exc:
        got = (type(exc), str(exc))
    assert got == expected


def test_a_wrong_type_fails_as_the_stdlib_does() -> None:
    with pytest.raises(TypeError):
        base64.b64decode(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        b64.b64decode(5)  # type: ignore[arg-type]
