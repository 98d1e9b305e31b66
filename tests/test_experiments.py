"""Experiments through a real embedded server: 2 variants x 2 scenarios x 2 repeats, resuming, definitions."""

from __future__ import annotations

import asyncio
import json

import pytest

import voicelab
from voicelab.agents import Agent, tool
from voicelab.errors import ConfigError
from voicelab.experiments import Variant, experiment
from voicelab.prompts import Prompt
from voicelab.scenarios import Scenario, expect

# The embedded server's script: the greeting differs with the prompt (a rule that applies only while the
# session instructions ask to repeat numbers back), so the two prompt variants answer differently.
SCRIPT = {
    "fallback": "Sorry, I did not catch that.",
    "rules": [
        {
            "match": "would like to return",
            "examples": ["Hi, I would like to return an order."],
            "instructions": "repeat (it|them|numbers) back",
            "say": "I can help. What is your order number? I will repeat it back to you.",
        },
        {"match": "would like to return", "say": "Sure. What is the order number?"},
        {
            "match": "order number is (?P<order_number>[a-z ]+[a-z])",
            "examples": ["The order number is four five six seven."],
            "call": {"name": "lookup_order", "arguments": {"order_number": "{order_number}"}},
            "say": "Order {order_number}: {output}",
        },
        {
            "match": "return label",
            "examples": ["Yes, please send me the return label."],
            "call": {"name": "create_return_label", "arguments": {"delivery": "email"}},
            "say": "Done. {output}",
        },
    ],
}


@tool
def lookup_order(order_number: str) -> str:
    """Look up an order."""
    return "not stubbed"


@tool
def create_return_label(delivery: str = "email") -> str:
    """Create a return label."""
    return f"The label is on its way by {delivery}."


SECRET = "Bearer sk-" + "test-secret-0123456789abcdef"
BASE = Agent(
    name="desk",
    instructions="",
    tools=[lookup_order, create_return_label],
    turn_detection={"type": "server_vad", "silence_duration_ms": 500},
)
PLAIN = Prompt(role="You are the returns desk.")
CAREFUL = PLAIN.replace(instructions="When the caller gives a number, repeat it back.")
RETURNS = Scenario(
    "returns",
    ["Hi, I would like to return an order.", "The order number is four five six seven."],
    stubs={"lookup_order": "Delivered on March third."},
    expect=[
        expect.says("repeat it back"),
        expect.tool("lookup_order", {"order_number": "four five six seven"}),
        expect.says("delivered on march third"),
    ],
)
LABEL = Scenario(
    "label",
    ["Yes, please send me the return label."],
    expect=[
        expect.tool("create_return_label", {"delivery": "e.*"}, match="pattern"),
        expect.never_says("sorry"),
        expect.first_audio_within(5000),
    ],
)


async def test_two_variants_two_scenarios_two_repeats(tmp_path) -> None:
    result = await experiment(
        {"plain": PLAIN, "careful": CAREFUL},
        [RETURNS, LABEL],
        repeats=2,
        base=BASE,
        script=SCRIPT,
        out_dir=tmp_path / "exp",
        progress=False,
    )
    runs = result.runs
    assert len(runs) == 8 and list(runs["variant"].unique()) == ["plain", "careful"]
    assert runs["error"].isna().all() and not runs["resumed"].any()
    by = runs.set_index("run_id")
    assert list(by.index[:4]) == [
        "plain__returns__0",
        "plain__returns__1",
        "plain__label__0",
        "plain__label__1",
    ]
    # exact expectation outcomes
    for variant, greeted in (("plain", False), ("careful", True)):
        for repeat in (0, 1):
            row = by.loc[f"{variant}__returns__{repeat}"]
            assert row["expect: says:repeat it back"] == greeted
            assert row['expect: tool:lookup_order{"order_number": "four five six seven"}']
            assert row["expect: says:delivered on march third"]  # the scenario's stub answered the tool
            assert row["passed"] == greeted
            assert row["expectations_met"] == (3 if greeted else 2) and row["expectations"] == 3
            assert (row["tool_calls"], row["tool_calls_correct"], row["arguments_correct"]) == (1, 1, 1)
            assert row["turns"] == 2 and row["responses"] == 3
            row = by.loc[f"{variant}__label__{repeat}"]
            assert row["passed"] and row["expectations_met"] == 3
            assert row['expect: tool:create_return_label{"delivery": "e.*"}']
            assert row["turns"] == 1 and row["guardrail_trips"] == 0 and row["interruptions"] == 0
    assert (runs["first_audio_p50_ms"] >= 500).all()  # the VAD's 500 ms of silence are part of it
    assert (runs["input_tokens"] > 0).all() and (runs["cost_usd"] > 0).all()
    assert runs["conversation_s"].gt(1).all()
    assert runs.groupby("variant")["prompt_hash"].nunique().eq(1).all()
    assert by.loc["plain__label__0", "prompt_hash"] == PLAIN.hash
    assert by.loc["careful__label__0", "prompt_hash"] == CAREFUL.hash
    summary = result.summary
    assert list(summary.index) == ["plain", "careful"]
    assert summary.loc["plain", "pass_rate"] == 0.5 and summary.loc["careful", "pass_rate"] == 1.0
    assert summary.loc["plain", "passed"] == 2 and summary.loc["careful", "runs"] == 4
    assert (
        summary.loc["plain", "tool_call_accuracy"] == 1.0
        and summary.loc["careful", "argument_accuracy"] == 1.0
    )
    assert summary["guardrail_trips"].eq(0).all() and summary["errors"].eq(0).all()
    p50, p95 = summary.loc["careful", ["first_audio_p50_ms", "first_audio_p95_ms"]]
    assert 500 <= p50 <= p95 < 5000
    assert result.best == "careful"
    assert "best: <b>careful</b>" in result._repr_html_() and "pass_rate" in result._repr_html_()
    # every run recorded; files for people
    assert (tmp_path / "exp" / "runs" / "careful__label__1" / "events.jsonl").is_file()
    assert (tmp_path / "exp" / "runs.csv").is_file() and (tmp_path / "exp" / "summary.csv").is_file()
    figure = result.figure()
    assert [ax.get_title() for ax in figure.axes] == ["pass rate", "end of speech -> first audio", "cost"]
    assert result.save_figure().is_file()
    provenance = result.provenance("careful")
    assert provenance["pass_rate"] == 1.0 and provenance["compared_with"] == ["plain"]
    assert len(provenance["runs"]) == 4


async def test_a_rerun_skips_finished_runs_and_an_interrupted_one_loses_none(tmp_path) -> None:
    out = tmp_path / "exp"
    kwargs = {"base": BASE, "script": SCRIPT, "out_dir": out, "progress": False, "concurrency": 1}
    task = asyncio.create_task(experiment({"careful": CAREFUL}, [RETURNS, LABEL], repeats=2, **kwargs))
    first = out / "runs" / "careful__returns__0" / "result.json"
    while not first.exists():
        await asyncio.sleep(0.01)
    task.cancel()  # a kernel restart half way
    with pytest.raises(asyncio.CancelledError):
        await task
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    assert "careful__returns__0" in finished and len(finished) < 4
    result = await experiment({"careful": CAREFUL}, [RETURNS, LABEL], repeats=2, **kwargs)
    resumed = dict(zip(result.runs["run_id"], result.runs["resumed"], strict=True))
    assert all(resumed[run] for run in finished)
    assert sum(resumed.values()) == len(finished)
    for run, mtime in finished.items():  # not run again
        assert (out / "runs" / run / "result.json").stat().st_mtime_ns == mtime
    assert result.summary.loc["careful", "pass_rate"] == 1.0 and result.runs["passed"].all()
    again = await experiment({"careful": CAREFUL}, [RETURNS, LABEL], repeats=2, **kwargs)
    assert again.runs["resumed"].all()
    assert json.loads((out / "runs" / "careful__label__0" / "result.json").read_text())["passed"] is True
    # a changed variant under the same name is run again
    changed = await experiment({"careful": PLAIN}, [LABEL], repeats=1, **kwargs)
    assert not changed.runs["resumed"].any()


async def test_settings_and_agent_variants_and_connect_kwargs(tmp_path) -> None:
    fast_vad = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}
    result = await experiment(
        [
            Variant(
                "vad300",
                prompt=CAREFUL,
                settings=fast_vad,
                connect_kwargs={"model": "gpt-realtime-mini", "headers": {"Authorization": SECRET}},
            ),
            BASE.clone(name="agent-as-is", instructions=CAREFUL.render()),
        ],
        [LABEL],
        base=BASE,
        script=SCRIPT,
        out_dir=tmp_path / "exp",
        progress=False,
    )
    by = result.runs.set_index("variant")
    meta = json.loads((tmp_path / "exp" / "runs" / "vad300__label__0" / "meta.json").read_text())
    assert meta["model"] == "gpt-realtime-mini"  # connect_kwargs reached voicelab.connect
    assert meta["config"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 300
    assert 300 <= by.loc["vad300", "first_audio_p50_ms"] < 500 <= by.loc["agent-as-is", "first_audio_p50_ms"]
    assert result.agent("agent-as-is").name == "agent-as-is"
    # credentials given to connect never reach the files or the reprs
    for path in (tmp_path / "exp").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".csv"):
            assert "sk-test-secret" not in path.read_text(), path
    variant = Variant("v", prompt=CAREFUL, connect_kwargs={"headers": {"Authorization": SECRET}})
    assert "sk-test-secret" not in repr(variant) and "***" in repr(variant)


async def test_bad_definitions_fail_before_any_run(tmp_path) -> None:
    kwargs = {"base": BASE, "script": SCRIPT, "out_dir": tmp_path / "exp", "progress": False}
    with pytest.raises(ConfigError, match="variant name 'a' is used twice"):
        await experiment([Variant("a", prompt=PLAIN), Variant("a", prompt=CAREFUL)], [LABEL], **kwargs)
    wrong = Scenario("wrong", ["hi"], expect=[expect.tool("refund")])
    with pytest.raises(ConfigError, match="expects a call of 'refund' but agent 'desk' has no such tool"):
        await experiment({"a": PLAIN}, [wrong], **kwargs)
    with pytest.raises(ConfigError, match="unknown setting 'silence'"):
        await experiment({"a": {"silence": 3}}, [LABEL], **kwargs)
    with pytest.raises(ConfigError, match="takes no 'colour' in this version"):
        await experiment([Variant("a", prompt=PLAIN, connect_kwargs={"colour": "red"})], [LABEL], **kwargs)
    with pytest.raises(ConfigError, match="may not set 'url'"):
        await experiment([Variant("a", prompt=PLAIN, connect_kwargs={"url": "ws://x"})], [LABEL], **kwargs)
    with pytest.raises(ConfigError, match="pass base="):
        await experiment({"a": PLAIN}, [LABEL], out_dir=tmp_path / "e2", progress=False)
    with pytest.raises(ConfigError, match="repeats"):
        await experiment({"a": PLAIN}, [LABEL], repeats=0, **kwargs)
    assert not (tmp_path / "exp").exists()


def test_public_names() -> None:
    assert voicelab.experiment is experiment
    assert voicelab.Scenario is Scenario and voicelab.Prompt is Prompt


async def test_a_chained_architecture_variant_is_compared_in_the_same_table(tmp_path) -> None:
    result = await experiment(
        {"realtime": CAREFUL, "chained": {"instructions": CAREFUL.render(), "architecture": "chained"}},
        [LABEL],
        base=BASE,
        script=SCRIPT,
        out_dir=tmp_path / "exp",
        progress=False,
    )
    assert result.runs["passed"].all() and result.runs["error"].isna().all()
    assert list(result.summary.index) == ["realtime", "chained"]
    manifest = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    assert manifest["variants"][1]["connect_kwargs"] == {"architecture": "chained"}


def _no_labels(context: object, agent: object, text: str) -> bool:
    return "label is on its way" in text.lower()


async def test_guardrail_trips_are_counted_and_fail_the_expectation(tmp_path) -> None:
    from voicelab.agents import output_guardrail

    guarded = BASE.clone(name="guarded", output_guardrails=[output_guardrail(_no_labels)])
    strict = Scenario(
        "strict",
        ["Yes, please send me the return label."],
        expect=[expect.tool("create_return_label"), expect.no_guardrail_trip()],
    )
    result = await experiment(
        [BASE.clone(name="open"), guarded],
        [strict],
        script=SCRIPT,
        out_dir=tmp_path / "exp",
        progress=False,
    )
    by = result.runs.set_index("variant")
    assert by.loc["open", "guardrail_trips"] == 0 and by.loc["open", "passed"]
    assert by.loc["guarded", "guardrail_trips"] >= 1
    assert not by.loc["guarded", "expect: no_guardrail_trip"] and not by.loc["guarded", "passed"]
    assert by.loc["guarded", "expect: tool:create_return_label"]
    assert "trips: ['_no_labels']" in by.loc["guarded", "failures"]
    assert result.summary.loc["guarded", "guardrail_trips"] >= 1 and result.best == "open"


KILLED_RUN = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from test_experiments import BASE, CAREFUL, LABEL, RETURNS, SCRIPT
from voicelab.experiments import experiment
asyncio.run(experiment({{"careful": CAREFUL}}, [RETURNS, LABEL], repeats=3, base=BASE, script=SCRIPT,
                       out_dir={out!r}, progress=False, concurrency=1))
"""


async def test_a_killed_process_loses_no_finished_run(tmp_path) -> None:
    """A kernel that dies half way (SIGKILL, no cleanup): the next run of the cell reuses what finished."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "exp"
    code = KILLED_RUN.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        while len(list((out / "runs").glob("*/result.json"))) < 2:
            assert proc.poll() is None, "the experiment ended before it could be killed"
            await asyncio.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    finished = {p.parent.name for p in (out / "runs").glob("*/result.json")}
    assert 2 <= len(finished) < 6
    result = await experiment(
        {"careful": CAREFUL},
        [RETURNS, LABEL],
        repeats=3,
        base=BASE,
        script=SCRIPT,
        out_dir=out,
        progress=False,
    )
    assert set(result.runs.loc[result.runs["resumed"], "run_id"]) == finished
    assert len(result.runs) == 6 and result.runs["passed"].all()


async def test_the_same_table_against_a_server_given_by_url(tmp_path) -> None:
    """Runs against any Realtime URL (here a separately started embedded server standing in for the real
    API) give the same columns and dtypes as runs on the experiment's own server."""
    own = await experiment(
        {"careful": CAREFUL}, [LABEL], base=BASE, script=SCRIPT, out_dir=tmp_path / "own", progress=False
    )
    with voicelab.serve(SCRIPT, pace="fast") as server:
        remote = await experiment(
            {"careful": CAREFUL},
            [LABEL],
            base=BASE,
            url=server.url,
            api_key="sk-local",
            out_dir=tmp_path / "remote",
            progress=False,
        )
    assert list(remote.runs.columns) == list(own.runs.columns)
    assert dict(remote.runs.dtypes) == dict(own.runs.dtypes)
    assert list(remote.summary.columns) == list(own.summary.columns)
    assert remote.runs["passed"].all() and own.runs["passed"].all()
    manifest = json.loads((tmp_path / "remote" / "experiment.json").read_text())
    assert manifest["target"] == server.url and manifest["pace"] is None


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Variant("v", settings=5), ("settings must be a dict",)),
        (lambda: Variant("v", settings={"voice": "robot"}), ("variant 'v'", "robot", "alloy")),
        (lambda: Variant("v", connect_kwargs={"recorddir": "x"}), ("takes no 'recorddir'",)),
        (lambda: Variant("v", architecture="hybrid"), ("architecture", "'chained'")),
        (lambda: Variant("v", agnt=None), ("agnt", "did you mean 'agent'")),
    ],
)
def test_bad_variants_fail_when_made(make, words) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"repeats": 10**9}, ("repeats", "more than 1000")),
        ({"concurrency": 10**6}, ("concurrency", "64")),
        ({"turn_timeout_s": float("nan")}, ("turn_timeout_s", "NaN")),
        ({"turn_timeout_s": -1}, ("turn_timeout_s",)),
        ({"realtime": "yes"}, ("realtime", "True or False")),
        ({"resume": "no"}, ("resume",)),
        ({"progress": 5}, ("progress",)),
        ({"out_dir": 5}, ("out_dir", "path")),
        ({"url": 5}, ("url must be a str",)),
        ({"url": "http://example.com"}, ("not a WebSocket URL",)),
        ({"script": "no_such_script"}, ("no_such_script",)),
    ],
)
async def test_bad_experiment_options_fail_before_any_run(tmp_path, options, words) -> None:
    kwargs = {"base": BASE, "script": SCRIPT, "out_dir": tmp_path / "exp", "progress": False, **options}
    with pytest.raises(voicelab.errors.VoicelabError) as info:
        await experiment({"a": PLAIN}, [LABEL], **kwargs)
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


async def test_a_run_whose_session_never_opens_is_recorded_with_its_error(tmp_path) -> None:
    """connect() refusing a run's options (here a timeout it cannot use) leaves no run folder; before, the
    run's result could not be written there and the error said 'cannot use .../result.json.tmp' instead of
    why the session failed."""
    variant = Variant("a", prompt=PLAIN, connect_kwargs={"open_timeout": -1})
    result = await experiment(
        [variant], [LABEL], base=BASE, script=SCRIPT, out_dir=tmp_path / "exp", progress=False
    )
    error = result.runs["error"].iloc[0]
    assert "open_timeout" in error and "result.json" not in error
    assert not result.runs["passed"].iloc[0]
