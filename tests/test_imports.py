"""No two avdit modules import each other, directly or through others (module- and function-level imports), and
the model and the pipeline import nothing from the layers above them."""

import ast
from pathlib import Path

import avdit

ROOT = Path(avdit.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The avdit modules a file imports anywhere in it (``from pkg import sub`` names the submodule ``pkg.sub``)."""
    package = here if is_package else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {name for name in found if name in modules and name != here}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", set(files))
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, colouring modules on the current path)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing ``start`` can import, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "avdit.model.config" in graph["avdit.model.transformer"]  # module level
    assert "avdit.train.loop" in graph["avdit.cli.train"]  # inside a function


def test_find_cycle_reports_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_model_and_the_pipeline_import_nothing_above_them():
    graph = import_graph()
    above_model = ("avdit.codecs", "avdit.data", "avdit.train", "avdit.pipeline", "avdit.eval", "avdit.cli")
    assert not {m for m in reachable(graph, "avdit.model") if m.startswith(above_model)}
    assert not {m for m in reachable(graph, "avdit.pipeline")
                if m.startswith(("avdit.train", "avdit.eval", "avdit.cli", "avdit.data"))}


def test_the_top_level_holds_the_core_the_helpers_and_the_applications_have_their_packages():
    top = {p.stem for p in ROOT.glob("*.py")} - {"__init__"}
    assert top == {"layout", "latents", "pipeline"}, f"modules at the top level: {sorted(top)}"
    graph = import_graph()
    helpers = {m for m in graph if m.startswith("avdit.utils")}
    assert {"avdit.utils.atomic", "avdit.utils.seeding", "avdit.utils.distributed"} <= helpers
    for helper in helpers:  # the helpers build on nothing else of avdit's
        assert all(m.startswith("avdit.utils") for m in graph[helper]), (helper, graph[helper])
    users_of_apps = {m for m, deps in graph.items() if any(d.startswith("avdit.apps") for d in deps)}
    assert all(m.startswith(("avdit.apps", "avdit.cli")) for m in users_of_apps), users_of_apps
