"""The Lua files beside the store: each documented, each used, preludes where they are called.

No Redis here: the files are read as text and the store's calls to ``_script`` are found
with ``ast``; the integration tests run the scripts themselves.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from queues.store import scripts

STORE_DIR = Path(scripts.__file__).resolve().parent
LUA_FILES = sorted(scripts.LUA_DIR.glob("*.lua"))
LIBRARIES = {lib for libs in scripts.PRELUDES.values() for lib in libs}


def _header(path: Path) -> list[str]:
    """The comment lines a file opens with."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(itertools.takewhile(lambda line: line.startswith("--"), lines))


def _names_the_store_runs() -> set[str]:
    """Every constant name passed to ``_script(...)`` anywhere in ``queues/store/``."""
    names = set()
    for path in STORE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "_script"):
                [arg] = node.args
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                    f"{path.name}:{node.lineno}: _script takes a literal name")
                names.add(arg.value)
    return names


def test_the_scripts_are_found_beside_the_store() -> None:
    assert scripts.LUA_DIR == STORE_DIR / "lua"
    assert len(LUA_FILES) > 1


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda path: path.name)
def test_every_file_opens_with_keys_argv_and_returns(path: Path) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*\.lua", path.name), "lower_snake file names"
    starts = [line.split(":")[0] for line in _header(path) if re.match(r"-- [A-Z]\w*:", line)]
    assert starts[:3] == ["-- KEYS", "-- ARGV", "-- Returns"], _header(path)


def test_every_script_the_store_runs_is_a_file_and_every_file_is_used() -> None:
    files = {path.stem for path in LUA_FILES}
    used = _names_the_store_runs()
    assert used - files == set(), "the store runs a script that has no file"
    assert files - used - LIBRARIES == set(), "a .lua file that nothing runs or prepends"
    assert files >= LIBRARIES, "a prelude that has no file"
    assert set(scripts.PRELUDES) <= used, "a prelude for a script the store never runs"
    assert not LIBRARIES & used, "a library is prepended, never run on its own"


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_library_reaches_exactly_the_scripts_that_call_it(library: str) -> None:
    text = (scripts.LUA_DIR / f"{library}.lua").read_text(encoding="utf-8")
    # a library's functions are its name or start with it (gate.lua: gate_pump, ...)
    functions = re.findall(rf"^local function ({library}\w*)\(", text, re.MULTILINE)
    assert functions, f"{library}.lua defines no {library}* function"
    calls = re.compile(rf"\b({'|'.join(functions)})\(")
    callers = {path.stem for path in LUA_FILES
               if path.stem != library and calls.search(path.read_text(encoding="utf-8"))}
    # a library that calls it brings it to each script that prepends that library
    reached = (callers - LIBRARIES) | {name for name, libs in scripts.PRELUDES.items()
                                       if callers & LIBRARIES & set(libs)}
    assert reached == {name for name, libs in scripts.PRELUDES.items() if library in libs}
    for name in reached:
        source = re.sub(r"--[^\n]*", "", scripts.source(name))  # code only
        for function in functions:
            defined = source.index(f"local function {function}(")
            used = [m.start() for m in re.finditer(rf"\b{function}\(", source)
                    if m.start() != defined + len("local function ")]
            assert all(use > defined for use in used), f"{function} used before it is defined"


def test_a_script_without_preludes_is_its_file() -> None:
    assert scripts.source("clean") == (scripts.LUA_DIR / "clean.lua").read_text(encoding="utf-8")
