"""The code's shape: imports go handlers -> bot -> storage, and no bot modules import
each other in a circle (a circle is one module in two files)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "storage")
# The composition roots may reach up to handlers/: the app factory names the listener
# modules the features declare (it imports them by name), and the CLI serves the app.
MAY_IMPORT_HANDLERS = {"bot.app", "bot.cli"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> set[str]:
    """The project modules `name` imports, anywhere in it (type-only imports count: a
    circle of types is a circle of meaning)."""
    tree = ast.parse(MODULES[name].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                      else node.module for a in node.names}
    return {m for m in found if m in MODULES and m != name}


def top(name: str) -> str:
    return name.split(".")[0]


def test_imports_go_handlers_to_bot_to_storage():
    wrong = []
    for name in MODULES:
        for imported in imports(name):
            if top(name) == "storage" and top(imported) != "storage":
                wrong.append(f"{name} -> {imported}")
            if top(name) == "bot" and top(imported) == "handlers" \
                    and name not in MAY_IMPORT_HANDLERS:
                wrong.append(f"{name} -> {imported}")
    assert wrong == []


def test_no_import_circles_among_bot_modules():
    graph = {name: {m for m in imports(name) if top(m) == "bot"} for name in MODULES
             if top(name) == "bot"}
    circles = []
    for start in graph:
        seen, stack = set(), [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join((*path, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*path, nxt)))
    assert circles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_readme_maps_every_module(name):
    """The README's map of the code names each module (a package by its folder)."""
    readme = (ROOT / "README.md").read_text()
    path = MODULES[name].relative_to(ROOT)
    shown = f"{path.parent.name}/" if path.name == "__init__.py" else path.name
    assert shown in readme, f"{path} is not in the README's map of the code"
