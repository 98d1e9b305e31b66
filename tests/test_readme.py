"""README.md's Python code runs as written, offline, against the embedded server.

The ```python blocks run in order in one namespace, as the cells of one notebook (top-level `await` included),
in a temporary folder with no OPENAI_API_KEY. An HTML comment right before a fence changes that for its block:

    <!-- readme-test: skip (why) -->                          not run here (the reason is required)
    <!-- readme-test: replace "OLD" "NEW" (why) -->            run with OLD replaced by NEW (OLD must occur)

Tracebacks point at README.md's own line numbers.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")  # on the line right before the fence
SKIP = re.compile(r"skip\s+\((.+)\)\Z", re.DOTALL)
REPLACE = re.compile(r'replace\s+"((?:[^"\\]|\\.)*)"\s+"((?:[^"\\]|\\.)*)"\s+\((.+)\)\Z', re.DOTALL)


@dataclass
class Block:
    line: int  # README line of the block's first code line
    code: str
    skip: str | None = None  # the reason, for a skipped block

    def source(self) -> str:
        """The code padded with blank lines, so that compile() reports README's line numbers."""
        return "\n" * (self.line - 1) + self.code


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(1)) + 1
        block = Block(line, match.group(1))
        line_before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = DIRECTIVE.fullmatch(line_before.strip())
        if directive is not None:
            apply_directive(block, directive.group(1))
        blocks.append(block)
    return blocks


def apply_directive(block: Block, directive: str) -> None:
    where = f"README.md line {block.line - 1}"
    if (skip := SKIP.match(directive)) is not None:
        block.skip = skip.group(1)
    elif (replace := REPLACE.match(directive)) is not None:
        old, new = (s.replace('\\"', '"') for s in replace.group(1, 2))
        if old not in block.code:
            raise ValueError(f"{where}: readme-test replace: {old!r} does not occur in the block below it")
        block.code = block.code.replace(old, new)
    else:
        raise ValueError(
            f"{where}: unknown readme-test directive {directive!r}; use "
            '`skip (reason)` or `replace "OLD" "NEW" (reason)`'
        )


def test_directives_are_read() -> None:
    text = (
        "a\n<!-- readme-test: skip (needs OPENAI_API_KEY) -->\n```python\nx = 1\n```\n"
        '\n<!-- readme-test: replace "[:3]" "[:1]" (time) -->\n```python\ny = t[:3]\n```\n'
        "\n```python\nz = 3\n```\n"
    )
    skipped, replaced, plain = readme_blocks(text)
    assert skipped.skip == "needs OPENAI_API_KEY" and skipped.line == 4
    assert replaced.code == "y = t[:1]\n" and replaced.skip is None
    assert plain.code == "z = 3\n" and plain.skip is None and plain.line == 13
    with pytest.raises(ValueError, match="does not occur"):
        readme_blocks('<!-- readme-test: replace "nope" "x" (why) -->\n```python\ny = 1\n```\n')
    with pytest.raises(ValueError, match="unknown readme-test directive"):
        readme_blocks("<!-- readme-test: skip -->\n```python\ny = 1\n```\n")


def test_every_readme_block_is_run_or_skipped_with_a_reason() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    for block in blocks:
        compile(block.source(), str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    skipped = [block for block in blocks if block.skip is not None]
    assert len(skipped) <= 2, f"README blocks not run by this test: {[(b.line, b.skip) for b in skipped]}"


async def test_readme_python_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("agents")  # the embedded-server block drives the Agents SDK's RealtimeRunner
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    ran = 0
    try:
        for block in readme_blocks(README.read_text(encoding="utf-8")):
            if block.skip is not None:
                continue
            code = compile(block.source(), str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            coroutine = eval(code, namespace)  # README's own code, as a notebook cell
            if coroutine is not None:
                await coroutine
            ran += 1
            if "lab" in namespace and "lab_checked" not in namespace:
                check_lab(namespace["lab"])
                namespace["lab_checked"] = True
    finally:
        server = namespace.get("server")
        if server is not None:
            server.close()
    assert ran >= 8

    # What the blocks say they produce.
    compared = namespace["tables"].compare(
        {a: namespace["load_recording"](f"runs/{a}") for a in ("realtime", "chained")}
    )
    assert list(compared["architecture"]) == ["realtime", "chained"]
    assert (tmp_path / "my_turns" / "manifest.json").is_file()  # lab.save_turns
    assert (tmp_path / "stubs.json").is_file()  # stubs.save
    assert (tmp_path / "call.png").is_file()  # plot_session(...).savefig
    assert (tmp_path / "my-caller" / "turn-001.wav").is_file()  # clips.save_turns
    assert namespace["event"].type == "agent_end"  # the Agents SDK's RealtimeSession reached the end


def check_lab(lab: Any) -> None:
    """Issue 7's names on the lab of README's cockpit block (connected, then disconnected and closed)."""
    assert lab.recording_path is not None and (lab.recording_path / "events.jsonl").is_file()
    assert lab.recording_path.name.startswith("lab-")
    assert lab.recordings == [lab.recording_path]
    assert lab.session is not None and lab.session.recording_path == lab.recording_path
    assert lab.stubs is not None
    assert {"history", "turns", "tool_calls", "guardrail_trips"} <= set(lab.tables())


def test_readme_script_example_loads(tmp_path: Path) -> None:
    from voicelab.server.script import load_script

    found = re.search(r"^```yaml\n(.*?)^```", README.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    assert found is not None, "README's script example (```yaml) is gone"
    path = tmp_path / "script.yaml"
    path.write_text(found.group(1), encoding="utf-8")
    script = load_script(path)
    assert len(script.rules) == 2 and script.fallback == "Sorry, I did not catch that."
