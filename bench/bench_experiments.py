"""Bench: experiment throughput on the embedded server, and what an experiment run costs beyond its session.

Prints one JSON line per figure.

- throughput: seconds of conversation (the caller's audio as sent, silences included, plus the
  assistant's audio: how long the call would last live) per wall second, for one run at a time and for N
  concurrent runs, through `voicelab.experiment` on a fresh in-process embedded server at pace="fast"
  (server start included);
- throughput over processes: the same, one run at a time in each of N processes (each with its own
  in-process server: the notebook case, scaled by processes), conversation seconds of all of them per wall
  second from a common start (imports done) to the last one's end;
- cost per run beyond the session: the same runs (same agent, caller audio, recording on) made by hand with
  `connect` + `play_turns` (the baseline) and by `voicelab.experiment` one at a time against the same
  server (expectation checks, tables, result files included), median wall time per run, interleaved rounds.

    python bench/bench_experiments.py [--runs 8] [--concurrency 4 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import voicelab
from voicelab.caller import play_turns
from voicelab.demo import caller_turns, returns_desk_agent
from voicelab.scenarios import Scenario, expect


def emit(metric: str, value: float, unit: str, **context: Any) -> None:
    print(json.dumps({"bench": "experiments", "metric": metric, "value": value, "unit": unit, **context}))


def scenario() -> Scenario:
    return Scenario(
        "returns",
        caller_turns("returns"),
        expect=[
            expect.tool("lookup_order", {"order_number": "four five six seven"}),
            expect.says("return label"),
            expect.never_says("sorry"),
        ],
    )


async def throughput(runs: int, concurrency: int, work: Path) -> tuple[float, float, float]:
    """(conversation s, wall s, pass rate) of `runs` runs, `concurrency` at a time, server start included."""
    start = time.perf_counter()
    result = await voicelab.experiment(
        {"desk": returns_desk_agent()},
        [scenario()],
        repeats=runs,
        out_dir=work / f"throughput-{concurrency}",
        concurrency=concurrency,
        progress=False,
    )
    wall = time.perf_counter() - start
    return float(result.runs["conversation_s"].sum()), wall, float(result.runs["passed"].mean())


def _process_child(runs: int) -> None:
    """One process of the process-scaling figure: waits for `go` on stdin, prints (conversation s, wall s)."""
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        print("ready", flush=True)
        sys.stdin.readline()
        conversation, wall, passed = asyncio.run(throughput(runs, 1, Path(tmp)))
        print(json.dumps({"conversation": conversation, "wall": wall, "passed": passed}), flush=True)


def process_throughput(processes: int, runs: int) -> tuple[float, float, float]:
    """(conversation s, wall s, pass rate) of `processes` processes each doing `runs` runs one at a time."""
    import subprocess
    import sys

    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(runs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()
    start = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    parts = [json.loads(child.communicate(timeout=600)[0].strip().splitlines()[-1]) for child in children]
    wall = time.perf_counter() - start
    conversation = sum(part["conversation"] for part in parts)
    return conversation, wall, statistics.mean(part["passed"] for part in parts)


async def bare_runs(url: str, runs: int, work: Path, tag: str) -> list[float]:
    """Mean wall time per run of the same sessions made by hand (recorded, no experiment machinery)."""
    turns = scenario().audio_turns()
    start = time.perf_counter()
    for index in range(runs):
        async with voicelab.connect(
            returns_desk_agent(), url=url, api_key="sk-local", record_dir=work / f"bare-{tag}-{index}"
        ) as session:
            await play_turns(session, turns, realtime=False)
    return [(time.perf_counter() - start) / runs]


async def experiment_runs(url: str, runs: int, work: Path, tag: str) -> list[float]:
    """Mean wall time per run of `voicelab.experiment` doing the same runs one at a time."""
    start = time.perf_counter()
    await voicelab.experiment(
        {"desk": returns_desk_agent()},
        [scenario()],
        repeats=runs,
        url=url,
        api_key="sk-local",
        out_dir=work / f"exp-{tag}",
        concurrency=1,
        progress=False,
    )
    return [(time.perf_counter() - start) / runs]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[2])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # see __main__
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        conversation, wall, passed = await throughput(args.runs, 1, work)
        single = conversation / wall
        emit("conversation_s_per_wall_s_1", round(single, 1), "x", runs=args.runs, pass_rate=passed)
        for n in args.concurrency:
            conversation, wall, passed = await throughput(args.runs * 2, n, work)
            emit(
                f"conversation_s_per_wall_s_{n}",
                round(conversation / wall, 1),
                "x",
                runs=args.runs * 2,
                baseline="conversation_s_per_wall_s_1",
                ratio=round(conversation / wall / single, 2),
                pass_rate=passed,
                target=">= 50x aggregate",
            )
        for n in args.processes:
            conversation, wall, passed = process_throughput(n, args.runs)
            emit(
                f"conversation_s_per_wall_s_{n}_processes",
                round(conversation / wall, 1),
                "x",
                runs=args.runs * n,
                baseline="conversation_s_per_wall_s_1",
                ratio=round(conversation / wall / single, 2),
                pass_rate=passed,
                cores=2,
            )
        with voicelab.serve("returns_desk", pace="fast") as server:
            bare: list[float] = []
            exp: list[float] = []
            for round_ in range(args.rounds):  # interleaved, so drift hits both
                bare += await bare_runs(server.url, args.runs, work, str(round_))
                exp += await experiment_runs(server.url, args.runs, work, str(round_))
        bare_ms = statistics.median(bare) * 1000
        exp_ms = statistics.median(exp) * 1000
        emit("bare_session_per_run", round(bare_ms, 1), "ms", runs=args.runs, rounds=args.rounds)
        emit(
            "experiment_per_run",
            round(exp_ms, 1),
            "ms",
            baseline="bare_session_per_run",
            ratio=round(exp_ms / bare_ms, 3),
            target="<= 1.10",
        )


if __name__ == "__main__":
    import sys

    if "--child" in sys.argv:  # one process of the process-scaling figure (it runs its own event loop)
        _process_child(int(sys.argv[sys.argv.index("--child") + 1]))
    else:
        asyncio.run(main())
