"""The layering of issue 24, checked on the code itself (docs/architecture.md). The import contracts are in
pyproject.toml ([tool.importlinter], run by `make lint`); this adds what a contract cannot say:

- the package import graph has no cycle beyond the ones listed in KNOWN_CYCLES, which may only shrink: a new
  cycle, or a package joining a listed one, fails here, and so does a listed one that is gone (shrink the
  list);
- no function-local import of imail code (a cycle dodged at import time is still a cycle), except in the CLI,
  whose commands import lazily so that `imail --help` starts fast;
- every entry point wires the event subscribers (webhook fan-out and rollups).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import grimp

import imail
from imail.analytics.rollups import apply_recorded
from imail.events.subscribers import subscribe, subscribers, unsubscribe
from imail.main import create_app
from imail.webhooks.fanout import fan_out
from tests.conftest import make_settings

SRC = Path(imail.__file__).parent

# Known cycles between top-level packages of imail (each a strongly connected component of the package graph).
# Breaking them needs ownership moves (routers that combine domains above them; one owner for
# leads/campaigns/suppressions; warmup between sending and inboxes), listed in docs/architecture.md.
KNOWN_CYCLES = {
    # The platform: kit's web helpers raise imail.errors and read config; config parses with kit and mail.
    frozenset({"config", "errors", "kit", "mail", "models"}),
    frozenset(
        {"campaigns", "inboxes", "leads", "sending", "spamcheck", "suppressions", "tracking", "warmup"}
    ),
}
# Function-local imports of imail code allowed for start-up speed only (no cycle behind them).
LAZY_IMPORTS_ALLOWED = {"cli.py"}


def package_graph() -> dict[str, set[str]]:
    """Top-level package (or module) of imail -> the ones it imports, TYPE_CHECKING imports included."""
    graph = grimp.build_graph("imail", cache_dir=None)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        parts = module.split(".")
        if len(parts) < 2:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            target = imported.split(".")
            if len(target) > 1 and target[1] != parts[1]:
                edges[parts[1]].add(target[1])
    return edges


def cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset({"a", "b", "c"})}
    assert cycles({"a": {"b"}, "b": {"c"}}) == set()


def test_the_package_graph_has_no_cycle_beyond_the_known_ones():
    edges = package_graph()
    found = cycles(edges)

    def described(component: frozenset[str]) -> str:
        inner = sorted(f"{a} -> {b}" for a in component for b in edges[a] & component)
        return f"{sorted(component)}: {', '.join(inner)}"

    new = found - KNOWN_CYCLES
    assert not new, "new import cycle(s) between packages:\n" + "\n".join(described(c) for c in new)
    gone = KNOWN_CYCLES - found
    assert not gone, f"known cycle(s) gone or smaller, shrink KNOWN_CYCLES: {[sorted(c) for c in gone]}"


def test_workers_and_entry_points_are_in_no_cycle():
    found = cycles(package_graph())
    for top in (
        "workers",
        "main",
        "api",
        "cli",
        "wiring",
        "events",
        "webhooks",
        "analytics",
        "intake",
        "auth",
        "idempotency",
        "workspaces",
        "replies",
        "status",
    ):
        assert not any(top in component for component in found), top


def test_no_function_local_imports_of_imail_code():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in LAZY_IMPORTS_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                if any(n == "imail" or n.startswith("imail.") for n in names):
                    offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, offenders


def test_the_app_factory_wires_the_event_subscribers(tmp_path):
    before = subscribers()
    for subscriber in before:  # as in a fresh process (the suite's conftest wires them at import)
        unsubscribe(subscriber)
    try:
        create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/unused.db"))
        assert subscribers() == (fan_out, apply_recorded)  # deliveries, then rollups, as before issue 24
    finally:
        for subscriber in before:
            subscribe(subscriber)
