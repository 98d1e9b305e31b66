"""Notebooks made from code: the bundled notebooks' generators (notebooks/make_*.py) and the browser tests
write their cells here, so every notebook voicelab makes has the same kernel and the same shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Cell = tuple[str, str, Sequence[str]]  # ("code" | "markdown", source, expected outputs of a code cell)


def build_notebook(cells: Sequence[Cell]) -> Any:
    """An nbformat v4 notebook for the python3 kernel, without outputs, with stable cell ids (cell-00, ...)
    so that regenerating it gives the same file. A code cell's `expect` list (a MIME type, or "text:" and a
    substring) goes to its metadata for tests/test_notebooks.py."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source, expect) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        elif kind == "code":
            cell = nbformat.v4.new_code_cell(source)
            if expect:
                cell.metadata["voicelab"] = {"expect": list(expect)}
        else:
            raise ValueError(f"cell {index} has kind {kind!r}; use 'code' or 'markdown'.")
        cell.id = f"cell-{index:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def write_notebook(path: Any, cells: Sequence[Cell]) -> None:
    """Write `build_notebook(cells)` to `path` (what each notebooks/make_*.py does when run)."""
    from pathlib import Path

    import nbformat

    Path(path).write_text(nbformat.writes(build_notebook(cells)), encoding="utf-8")
    print(f"wrote {path}")


__all__ = ["Cell", "build_notebook", "write_notebook"]
