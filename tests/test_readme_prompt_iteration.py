"""README's "Prompt iteration" code runs as written (offline), with top-level await as in a notebook cell."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def section_code(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)
    assert blocks, f"README section {title!r} has no python code"
    return "\n".join(blocks)


async def test_prompt_iteration_section_runs_as_written(tmp_path, monkeypatch) -> None:
    pytest.importorskip("agents")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = compile(
        section_code("Prompt iteration"), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    namespace: dict[str, object] = {}
    coroutine = eval(code, namespace)  # the README's own code
    if coroutine is not None:
        await coroutine
    result: Any = namespace["result"]
    assert result.best == "v2"
    assert result.summary.loc["v2", "pass_rate"] == 1.0 and result.summary.loc["v1", "pass_rate"] == 0.0
    assert (tmp_path / "comparison.png").is_file()
    assert (tmp_path / "scenarios" / "order-return" / "scenario.json").is_file()
    exported = tmp_path / "returns_desk_agent.py"
    spec = importlib.util.spec_from_file_location("readme_export", exported)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PROVENANCE["experiment"]["variant"] == "v2"
    import voicelab

    with voicelab.serve("returns_prompts", pace="fast") as server:
        reply = await module.ask(
            "The order number is four five six seven.", url=server.url, api_key="sk-local"
        )
    assert reply.startswith("Let me read that back, four five six seven. It was delivered on March third.")
