"""The shared argument checks (voicelab.checks) and the class of problem they close across the public API:
a call that does not fit a signature (a misspelt keyword, a missing or extra argument) is an ArgumentError
naming the closest keyword, never Python's bare TypeError; numbers, flags, text and paths of the wrong kind
fail with one line that names the argument and the fix."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import voicelab
from voicelab import checks, clips, plots, replay, tables
from voicelab.errors import ArgumentError, ConfigError, VoicelabError


def _one_line(exc: BaseException, *words: str) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) < 500, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


AUDIO = voicelab.Audio.from_array(np.zeros(240, np.float32), 24000)

# (what, call, words the message must hold): each is a call a new user could mistype
MISSPELT: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
    ("SessionConfig(vioce=)", lambda: voicelab.SessionConfig(vioce="ash"), ("vioce", "did you mean 'voice'")),
    (
        "TurnDetection(silence=)",
        lambda: voicelab.TurnDetection(silence=3),
        ("silence", "silence_duration_ms"),
    ),
    ("Agent(vioce=)", lambda: voicelab.Agent(name="a", vioce="ash"), ("vioce", "'voice'")),
    ("Agent() without name", lambda: voicelab.Agent(), ("name",)),
    ("tool(nam=)", lambda: voicelab.tool(nam="x"), ("nam", "'name'")),
    ("output_guardrail(nam=)", lambda: voicelab.output_guardrail(nam="x"), ("nam", "'name'")),
    ("Stubs(5)", lambda: voicelab.Stubs(5), ("Stubs",)),
    ("Stubs().manual(timout=)", lambda: voicelab.Stubs().manual("t", timout=5), ("timout", "'timeout'")),
    ("detect_turns(engne=)", lambda: voicelab.detect_turns(AUDIO, engne="energy"), ("engne", "'engine'")),
    ("read_audio(allow=)", lambda: voicelab.read_audio("x.wav", allow=True), ("allow", "allow_empty")),
    ("Audio.from_array(rat=)", lambda: voicelab.Audio.from_array([0.0], rat=24000), ("rat", "'rate'")),
    ("Prompt(rol=)", lambda: voicelab.Prompt(rol="x"), ("rol", "'role'")),
    ("Scenario(expct=)", lambda: voicelab.Scenario("s", ["hi"], expct=[]), ("expct", "'expect'")),
    ("expect.says()", lambda: voicelab.expect.says(), ("phrase",)),
    ("Variant(agnt=)", lambda: voicelab.Variant("v", agnt=None), ("agnt", "'agent'")),
    ("export(fromat=)", lambda: voicelab.export(voicelab.Agent(name="a"), "markdown", fromat=1), ("fromat",)),
    ("load_recording()", lambda: voicelab.load_recording(), ("path",)),
    ("ChainedModels(speeech=)", lambda: voicelab.ChainedModels(speeech="x"), ("speeech", "'speech'")),
    ("serve(scrpt=)", lambda: voicelab.serve(scrpt="x"), ("scrpt", "'script'")),
    ("tables.turns()", lambda: tables.turns(), ("rec",)),
    (
        "plots.plot_session(widht_px=)",
        lambda: plots.plot_session(AUDIO, widht_px=5),
        ("widht_px", "width_px"),
    ),
    ("clips.save_turns(foldr=)", lambda: clips.save_turns("r", foldr="x"), ("foldr", "'folder'")),
    ("replay.load_agent(5, 6)", lambda: replay.load_agent("a:b", "c"), ("load_agent",)),
]


@pytest.mark.parametrize(("what", "call", "words"), MISSPELT, ids=[m[0] for m in MISSPELT])
def test_a_call_that_does_not_fit_is_an_argument_error(
    what: str, call: Callable[[], Any], words: tuple[str, ...]
) -> None:
    with pytest.raises(ArgumentError) as info:
        call()
    assert isinstance(info.value, ConfigError) and isinstance(info.value, TypeError)  # either catch works
    _one_line(info.value, *words)


def test_experiment_misspelt_keyword_fails_at_the_call_not_at_await() -> None:
    with pytest.raises(ArgumentError, match="did you mean 'repeats'"):
        voicelab.experiment({}, [], repeat=2)  # no await: the call itself refuses it
    assert asyncio.iscoroutinefunction(voicelab.experiment)  # still known as async (a marker on < 3.12)
    assert "repeats" in inspect.signature(voicelab.experiment).parameters  # help() still shows the real one


def test_checked_keeps_good_calls_and_inner_type_errors() -> None:
    @checked_fn
    def add(a: int, b: int = 1) -> int:
        return a + b

    assert add(1, b=2) == 3
    with pytest.raises(TypeError) as info:  # a TypeError raised inside is not turned into an ArgumentError
        add("x")
    assert not isinstance(info.value, ArgumentError)


def checked_fn(func: Callable[..., Any]) -> Callable[..., Any]:
    return checks.checked(func)


NUMBERS: list[tuple[Any, tuple[str, ...]]] = [
    (True, ("must be a number",)),
    ("5", ("must be a number",)),
    (float("nan"), ("not NaN",)),
    (float("inf"), ("infinite",)),
    (-1, ("out of range", "from 0 to 600000")),
    (10**9, ("out of range", "from 0 to 600000")),
]


@pytest.mark.parametrize(("value", "words"), NUMBERS)
def test_number_names_what_to_pass(value: Any, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        checks.number(value, "silence_ms", lo=0, hi=600_000, unit="ms", example=500)
    _one_line(info.value, "silence_ms", "e.g. silence_ms=500", *words)
    assert checks.number(500, "silence_ms", lo=0, hi=600_000) == 500
    assert checks.whole(3.0, "n") == 3


def test_flag_text_one_of() -> None:
    with pytest.raises(ConfigError, match="True or False"):
        checks.flag("yes", "resume")
    with pytest.raises(ConfigError, match="is empty"):
        checks.text("  ", "name", example="desk")
    with pytest.raises(ConfigError, match="must be a str"):
        checks.text(5, "name")
    with pytest.raises(ConfigError, match="did you mean 'fast'"):
        checks.one_of("fats", "pace", ("fast", "realtime"))
    assert checks.text(None, "x", none=True) is None


def test_paths(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="must be a path"):
        checks.path_arg(5, "folder")
    with pytest.raises(ConfigError, match="empty path"):
        checks.path_arg("", "folder")
    with pytest.raises(ConfigError, match="is a file"):
        checks.output_folder(a_file / "sub", "folder")
    with pytest.raises(ConfigError, match="is a folder"):
        checks.output_file(tmp_path, "path")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        checks.output_file(a_file / "x.json", "path")
    with pytest.raises(ConfigError, match="does not exist"):
        checks.input_file(tmp_path / "nope", "path")
    with pytest.raises(ConfigError, match="is a folder"):
        checks.input_file(tmp_path, "path")
    assert checks.output_folder(tmp_path / "new", "folder") == tmp_path / "new"


def test_takes_args_and_sequence_of() -> None:
    with pytest.raises(ConfigError, match="cannot be called with 3"):
        checks.takes_args(lambda text: False, 3, "guardrail", example="def g(context, agent, text)")
    with pytest.raises(ConfigError, match="got the class"):
        checks.takes_args(dict, 0, "factory", example="def f()")
    checks.takes_args(print, 3, "builtin", example="x")  # no signature to check: accepted
    with pytest.raises(ConfigError, match=r"wrap the one you have in \[...\]"):
        checks.sequence_of("a", "names", str, what="names")
    with pytest.raises(ConfigError, match=r"names\[1\] must be"):
        checks.sequence_of(["a", 5], "names", str, what="names")


def test_every_voicelab_error_in_the_probe_is_a_voicelab_error() -> None:
    assert issubclass(ArgumentError, VoicelabError)
    with pytest.raises(VoicelabError):
        asyncio.run(voicelab.experiment({"v": voicelab.Agent(name="a")}, [], progress="yes"))
