"""The shape of `peerline/`: no import cycle, no module over 750 lines, no class over 400, and
no import of our own code hidden inside a function (issue 18).

Every module is parsed with `ast`, never imported, so the checks see the code as written. Each
check prints its offenders, so a failure says what to fix; to see the offenders of the checks
marked as expected to fail, run `pytest --runxfail tests/test_shape.py`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "peerline"
MAX_MODULE_LINES = 750
MAX_CLASS_LINES = 400
# Libraries that would tie a flow to the database, the web, the queue or the telephone.
IMPURE = {"sqlalchemy", "flask", "werkzeug", "redis", "rq", "twilio", "requests"}

ImportNode = ast.Import | ast.ImportFrom


# Imports of our own code inside a function, allowed on purpose. Keep this short: each entry is
# (module, function) and says why a module-level import would not do.
ALLOWED_FUNCTION_IMPORTS: dict[tuple[str, str], str] = {
    # The CLI is one module of many small commands. What every command needs (settings, the
    # line's services, models) is imported at the top; a command that needs the web app, Alembic,
    # icalendar (the line file's sync and rota feeds) or the workers imports it when run, so
    # `peerline --help` and the other commands do not load them.
    **{
        ("peerline.cli", command): "a CLI command loads its heavy parts only when it runs"
        for command in (
            "serve",
            "db_upgrade",
            "worker",
            "replay_command",
            "sweep_command",
            "import_command",
            "export_command",
            "rota_feeds",
            "coordinator_create",
        )
    },
    # Web processes never send: the SDK's HTTP stack (requests, urllib3; ~5 MB a process)
    # loads with the first client a worker builds.
    ("peerline.service.twilio_http", "make_client"): "the SDK's HTTP stack loads with a send",
    # The simulator exists only in embedded mode; production never imports it.
    ("peerline.app", "create_app"): "the simulator is imported only when it is served",
    # An RQ job at the path queued jobs already name: it asks the worker process for its line
    # when it runs (the service layer never imports the workers at load time).
    ("peerline.service.voice.placement", "place_call_job"): "a job reads its worker's line",
}


@dataclass(frozen=True)
class Module:
    """One parsed module of `peerline/`."""

    name: str
    path: Path
    tree: ast.Module
    lines: int
    is_package: bool


def modules() -> dict[str, Module]:
    """Parse every module under `peerline/`, keyed by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8")
        found[name] = Module(name, path, ast.parse(text), len(text.splitlines()), is_package)
    return found


def where(module: Module) -> str:
    """Return the module's path relative to the repository, for messages."""
    return str(module.path.relative_to(ROOT))


def imported(module: Module, node: ImportNode, known: set[str]) -> set[str]:
    """Return the modules of `peerline/` an import statement loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        # A relative import counts from the module's package (a package is its own).
        base = module.name.split(".")
        if not module.is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    found = set()
    for alias in node.names:
        # `from package import module` loads the module; `from module import name` the module.
        if f"{target}.{alias.name}" in known:
            found.add(f"{target}.{alias.name}")
        elif target in known:
            found.add(target)
    return found


def never_run_on_import(node: ast.If) -> bool:
    """Return whether an `if` body never runs when the module is imported.

    That is `if TYPE_CHECKING:` (for the type checker only) and `if __name__ == "__main__":`
    (only when the module is run as a script, as `python -m`).
    """
    test = node.test
    if isinstance(test, ast.Name | ast.Attribute):
        return (test.id if isinstance(test, ast.Name) else test.attr) == "TYPE_CHECKING"
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def imports(tree: ast.Module, *, inside_functions: bool = False) -> Iterator[ImportNode]:
    """Yield the imports a module runs when loaded (and, if asked, those in its functions)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if inside_functions:
                pending.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.If) and never_run_on_import(node):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def import_graph(
    found: dict[str, Module], *, inside_functions: bool = False
) -> dict[str, set[str]]:
    """Return each module's imports of other modules of `peerline/`.

    By default only the imports a module runs when loaded; `inside_functions` adds the rest,
    which shows the cycles that imports inside functions hold together.
    """
    known = set(found)
    graph: dict[str, set[str]] = {}
    for name, module in found.items():
        targets: set[str] = set()
        for node in imports(module.tree, inside_functions=inside_functions):
            targets |= imported(module, node, known)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle through each group of modules that import each other (Tarjan)."""
    return [cycle for cycle, _ in cycle_groups(graph)]


def cycle_groups(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Return each group of modules that import each other, with one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(cycle_within(graph, group), group) for group in groups]


def cycle_within(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """Return a shortest import path from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def function_imports(found: dict[str, Module]) -> list[tuple[str, str, int, str]]:
    """Return (module, function, line, target) for each import of our code inside a function."""
    known = set(found)
    hits = []
    for name, module in found.items():
        for function in ast.walk(module.tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for target in sorted(imported(module, node, known)):
                    hits.append((name, function.name, node.lineno, target))
    # A nested function's import is seen from each enclosing function: report it once.
    return sorted({(m, f, n, t) for m, f, n, t in hits})


def report(title: str, offenders: list[str]) -> str:
    """Print and return a list of offenders under a title."""
    text = f"{title}:\n" + "\n".join(f"  {offender}" for offender in offenders)
    if offenders:
        print(text)
    return text


FOUND = modules()


def test_the_checks_see_the_package() -> None:
    graph = import_graph(FOUND)
    assert "peerline.service.settings" in FOUND and "peerline.flows.texter" in FOUND
    assert "peerline.service.settings" in graph["peerline.service.services"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph(FOUND))]
    assert not found, report("modules of peerline/ that import each other", found)


def test_no_import_cycle_even_through_imports_inside_functions() -> None:
    found = [
        " -> ".join(cycle) + f"  (all of {', '.join(sorted(group))})"
        for cycle, group in cycle_groups(import_graph(FOUND, inside_functions=True))
    ]
    assert not found, report("modules of peerline/ that import each other", found)


def test_no_module_over_750_lines() -> None:
    found = [
        f"{where(module)}: {module.lines} lines"
        for module in FOUND.values()
        if module.lines > MAX_MODULE_LINES
    ]
    assert not found, report(f"modules over {MAX_MODULE_LINES} lines", found)


def test_no_class_over_400_lines() -> None:
    found = []
    for module in FOUND.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    found.append(f"{where(module)}:{node.lineno} {node.name}: {size} lines")
    assert not found, report(f"classes over {MAX_CLASS_LINES} lines", found)


def test_no_import_of_our_code_inside_a_function() -> None:
    found = [
        f"{FOUND[module].path.relative_to(ROOT)}:{line} {function}() imports {target}"
        for module, function, line, target in function_imports(FOUND)
        if (module, function) not in ALLOWED_FUNCTION_IMPORTS
    ]
    assert not found, report("imports of peerline/ inside a function", found)


def test_every_allowed_function_import_is_still_there() -> None:
    # A stale exception would quietly allow the next hidden import in that function.
    used = {(module, function) for module, function, _, _ in function_imports(FOUND)}
    stale = sorted(f"{m}.{f}" for m, f in set(ALLOWED_FUNCTION_IMPORTS) - used)
    assert not stale, report("allowed function imports that no longer exist", stale)


def test_flows_stay_pure() -> None:
    # Flows are (state, event) -> (state, effects): no database, web, queue or other layer.
    found = []
    for name, module in FOUND.items():
        if not name.startswith("peerline.flows"):
            continue
        for node in imports(module.tree, inside_functions=True):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            targets = imported(module, node, set(FOUND))
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            outside = [t for t in targets if not t.startswith("peerline.flows")]
            impure = [n for n in names if n.split(".")[0] in IMPURE]
            if outside or impure:
                found.append(f"{where(module)}:{node.lineno} imports {', '.join(outside + impure)}")
    assert not found, report("flows that import beyond peerline/flows", found)
