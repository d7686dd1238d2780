"""The package structure holds: `core` imports no domain, `access` (who may do what, who
is calling) imports only `core`, and no import cycle between domain packages appears.
Issue 17 removed the last ones: `audit`, `routing` and `standards` left the accounts'
cycle (the audit trail is written through `core.audit`; the territory importer is handed
the national identifier rule), and `accounts ↔ territory` went when authorization moved
below both into `access`."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

#: The cycles tolerated (docs/architecture.md, "Known seams"): none. A new one fails.
KNOWN_CYCLES: list[set[str]] = []


def _imports() -> dict[str, set[str]]:
    """Package → the other app packages its modules import at module level (imports under
    `if TYPE_CHECKING:` and inside functions do not make a cycle at import time)."""
    graph: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP).parts
        package = parts[0].removesuffix(".py")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("app.") and (target := name.split(".")[1]) != package:
                    graph.setdefault(package, set()).add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_imports_no_domain() -> None:
    assert _imports().get("core", set()) == set()


def test_access_sits_below_every_domain() -> None:
    """Every domain asks who may do what; so `access` asks none of them."""
    assert _imports().get("access", set()) <= {"core"}


def test_no_import_cycle_grows_or_appears() -> None:
    for cycle in _cycles(_imports()):
        assert any(cycle <= known for known in KNOWN_CYCLES), sorted(cycle)


def test_cases_know_nothing_of_notifications_or_whistles() -> None:
    """Notifications and whistles depend on cases, never the other way: cases call their
    event listeners and extra sweeps, which `app/wiring.py` registers."""
    graph = _imports()
    assert graph["cases"].isdisjoint({"notifications", "whistles"})
    assert "whistles" not in graph["notifications"]
    assert _cycles({p: graph.get(p, set()) for p in ("cases", "notifications", "whistles")}) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_audit_routing_and_standards_are_out_of_the_cycles() -> None:
    """Accounts write the audit trail through `core.audit`, not the `audit` package (which
    reads it with the names of users and keys); the territory importer is handed
    `standards.identifiers.national_id_issues`, since standards reads routing's categories,
    and routing reads accounts and territory."""
    cyclic = set().union(*_cycles(_imports()))
    assert not cyclic & {"audit", "routing", "standards"}, sorted(cyclic)
    assert "standards" not in _imports().get("territory", set())
    assert "audit" not in _imports().get("accounts", set())


def test_the_settings_composition_sits_above_every_domain() -> None:
    """`app.settings` composes every domain's settings; a domain importing it at module
    level (rather than naming its type under TYPE_CHECKING) would tie every domain into one
    cycle."""
    graph = _imports()
    assert {p for p, targets in graph.items() if "settings" in targets} <= {"cli", "jobs", "main"}
