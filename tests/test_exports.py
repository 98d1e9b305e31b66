"""The public API is visible to tools (issue 8): every export resolves, dir() and tab completion list them,
type checkers see them (the TYPE_CHECKING block matches the lazy table), and each module's __all__ is true."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import voicelab

INIT = Path(voicelab.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module, from the `if TYPE_CHECKING:` block of voicelab/__init__.py."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    for alias in stmt.names:
                        found[alias.asname or alias.name] = stmt.module
    return found


def _same(value: object, expected: object) -> bool:
    """The export itself; or, for a function named like its module (voicelab.export), the module once it was
    imported, which must then be callable and hold the function."""
    if value is expected:
        return True
    return (
        isinstance(value, ModuleType)
        and callable(value)
        and getattr(value, value.__name__.rsplit(".")[-1]) is expected
    )


def test_every_export_resolves_to_the_object_of_its_module() -> None:
    for name, module in voicelab._EXPORTS.items():
        value = getattr(voicelab, name)
        assert _same(value, getattr(importlib.import_module(module), name)), name
    assert set(voicelab.__all__) == {*voicelab._EXPORTS, "__version__"}


def test_dir_lists_every_export_before_any_is_used() -> None:
    code = "import voicelab, json; print(json.dumps(dir(voicelab)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    listed = set(__import__("json").loads(out))
    missing = set(voicelab.__all__) - listed
    assert not missing, f"dir(voicelab) misses {sorted(missing)}"


def test_type_checkers_see_the_same_exports() -> None:
    seen = _type_checking_imports()
    missing = sorted(set(voicelab._EXPORTS) - set(seen))
    assert not missing, (
        f"add {missing} to the `if TYPE_CHECKING:` imports of voicelab/__init__.py (type checkers and IDEs "
        "see only those)"
    )
    extra = sorted(set(seen) - set(voicelab._EXPORTS))
    assert not extra, f"{extra} are imported for type checkers but not exported in _EXPORTS"
    for name, module in seen.items():
        target = importlib.import_module(module)
        assert _same(getattr(voicelab, name), getattr(target, name)), (name, module)


def test_an_unknown_name_is_a_clear_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Sesion'"):
        voicelab.Sesion  # noqa: B018


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(voicelab.__path__, "voicelab."):
        if ".widgets" in info.name or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_each_module_all_names_exist(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional extra (e.g. sounddevice) is not installed
        pytest.skip(f"{module_name}: {exc}")
    for name in getattr(module, "__all__", []):
        assert hasattr(module, name), f"{module_name}.__all__ lists {name!r}, which it does not define"


def test_a_misspelt_public_name_names_the_closest() -> None:
    from voicelab.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=r"did you mean voicelab\.Agent\?"):
        voicelab.Agnet  # noqa: B018
    assert not hasattr(voicelab, "no_such_name")  # still an AttributeError for hasattr()
    with pytest.raises(UnknownNameError, match=r"did you mean expect\.says\?"):
        voicelab.expect.sayz  # noqa: B018
