"""The package layout holds: no import cycle between first-level packages, a core without Flask.

The graph is read from the source with `ast` (nothing is imported): an edge A -> B for every
`import selfcheck.B…` / `from selfcheck.B… import …` / relative import reaching B in a module
of A, at any depth (imports inside functions count too: a cycle hidden in a function is still
a cycle of responsibilities).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import selfcheck

ROOT = Path(selfcheck.__file__).parent
# The core: no web framework. The questionnaire package and the policy module.
FLASK_FREE = ("questionnaire", "policy")


def unit_of(path: Path) -> str:
    """The first-level package (or module) of selfcheck that `path` belongs to."""
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def module_parts(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(path: Path) -> Iterator[str]:
    """Absolute dotted names of every module `path` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ["selfcheck", *module_parts(path)]
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            yield stem
            for alias in node.names:
                yield f"{stem}.{alias.name}"


def sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts)


def import_graph() -> dict[str, set[str]]:
    units = {unit_of(p) for p in sources() if p.parent != ROOT or p.name != "__init__.py"}
    graph: dict[str, set[str]] = {unit: set() for unit in units}
    for path in sources():
        if path == ROOT / "__init__.py":
            continue
        source = unit_of(path)
        for name in imported_modules(path):
            parts = name.split(".")
            inside = parts[0] == "selfcheck" and len(parts) > 1 and parts[1] in units
            if inside and parts[1] != source:
                graph[source].add(parts[1])
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, …, a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one_and_only_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_graph_sees_real_edges() -> None:
    graph = import_graph()
    assert {"questionnaire", "platform", "policy", "entry", "journey"} <= set(graph)
    assert "platform" in graph["entry"]
    assert "questionnaire" in graph["journey"]
    assert "platform" in graph["policy"]


def test_no_import_cycle_between_first_level_packages() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_core_does_not_import_flask() -> None:
    offenders = []
    for path in sources():
        if unit_of(path) not in FLASK_FREE:
            continue
        for name in imported_modules(path):
            if name.split(".")[0] in {"flask", "flask_babel", "flask_wtf", "werkzeug"}:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_the_core_does_not_import_the_web_layers() -> None:
    """The core may lean on the platform's models, never on a package that serves pages."""
    graph = import_graph()
    for unit in FLASK_FREE:
        assert graph[unit] <= {"questionnaire", "platform"}, (unit, graph[unit])


# Where a transaction may end: the views and CLI commands (once per request or command), the
# unit-of-work helpers, the migrations (their own connection), and a backup's read snapshot.
# Rate-limit counters use a session of their own (`with own.begin()`), not a commit call.
ENDS_A_TRANSACTION = {
    "cli.py",
    # A background job is a unit of work of its own, as a request or a command is: its
    # runner commits "done" together with what the job made, or rolls everything back.
    "platform/jobs.py",
    # The reminder job: one transaction per reminder, so a sent message is never sent twice.
    "journey/reminders.py",
    "platform/db.py",
    "platform/migrate.py",
    "platform/backup.py",
}


def test_operations_never_commit() -> None:
    offenders = []
    for path in sources():
        relative = path.relative_to(ROOT).as_posix()
        if relative in ENDS_A_TRANSACTION or path.name == "views.py":
            continue
        if path.name.endswith("_views.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "rollback"}
            ):
                offenders.append(f"{relative}:{node.lineno} {node.func.attr}()")
    assert offenders == []
