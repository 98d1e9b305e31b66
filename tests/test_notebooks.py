"""Run every notebook in notebooks/ headless (nbclient, the venv's python3 kernel) and check its key outputs.

A code cell can declare the outputs it must produce in its metadata, which the generators write:
`{"voicelab": {"expect": ["image/png", "text:eos_to_first_audio_ms"]}}`: a MIME type that must appear in
one of its outputs, or `text:` followed by a substring of its text/plain, text/html or stream output.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 180
API_KEY = re.compile(r"sk-[A-Za-z0-9_-]{20,}")


def execute(nb: Any, workdir: Path) -> Any:
    """Execute `nb` in `workdir` with the python3 kernel (jupyter_client runs it with this sys.executable)."""
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    return client.execute()


def output_text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    data = output.get("data", {})
    return "\n".join(str(data.get(kind, "")) for kind in ("text/plain", "text/html", "text/markdown"))


def missing_expectations(cell: Any) -> list[str]:
    """The expectations of `cell` that its outputs do not meet."""
    expected = cell.get("metadata", {}).get("voicelab", {}).get("expect", [])
    outputs = cell.get("outputs", [])
    missing = []
    for want in expected:
        if want.startswith("text:"):
            found = any(want[5:] in output_text(out) for out in outputs)
        else:
            found = any(want in out.get("data", {}) for out in outputs)
        if not found:
            missing.append(want)
    return missing


def test_the_kernel_is_this_virtualenv(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    execute(nb, tmp_path)
    assert nb.cells[0].outputs[0]["text"].strip() == sys.prefix


def test_expectations_are_checked() -> None:
    cell = nbformat.v4.new_code_cell("x")
    cell.metadata["voicelab"] = {"expect": ["image/png", "text:hello"]}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello world\n")]
    assert missing_expectations(cell) == ["image/png"]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ has no .ipynb files"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_headless(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the notebooks must run offline
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    execute(nb, tmp_path)  # raises CellExecutionError (with the traceback) on the first failing cell
    checked = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [out for out in cell.outputs if out.get("output_type") == "error"]
        assert not errors, f"{path.name} cell {index}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        missing = missing_expectations(cell)
        assert not missing, f"{path.name} cell {index} did not output {missing}:\n{cell.source}"
        checked += bool(cell.get("metadata", {}).get("voicelab", {}).get("expect"))
    assert checked > 0, f"{path.name} declares no expected outputs (metadata voicelab.expect)"
    assert not API_KEY.search(nbformat.writes(nb)), f"{path.name}: something like an API key was printed"


GENERATORS = sorted(NOTEBOOK_DIR.glob("make_*.py"))


@pytest.mark.parametrize("generator", GENERATORS, ids=[g.name for g in GENERATORS])
def test_committed_notebook_matches_its_generator(generator: Path, tmp_path: Path) -> None:
    target = NOTEBOOK_DIR / (generator.stem.removeprefix("make_") + ".ipynb")
    module = runpy.run_path(str(generator))
    fresh = module["build"]()
    assert nbformat.writes(fresh) == target.read_text(encoding="utf-8"), (
        f"{target.name} is out of date: run python {generator.relative_to(ROOT)}"
    )
