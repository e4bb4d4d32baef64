"""The layers import downwards only: read from the source, so a new import that breaks a rule fails here.

- ``accounts`` imports no ``exchange`` module (exchange fills its ports at start-up);
- ``core`` (errors, the service wrapper, idempotency's helpers, limits, money, clock, db) imports no app;
- ``config`` imports no exchange model, service or API module;
- selectors import neither services nor the API;
- services import each other at module level only, in no cycle, and none imports the approvals module
  (the top of the graph, which dispatches to them).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(folder: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    return set()


def _imports(path: Path) -> set[str]:
    return {name for node in ast.walk(ast.parse(path.read_text())) for name in _names(node)}


def _imports_in_functions(path: Path) -> set[str]:
    functions = [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return {name for function in functions for node in ast.walk(function) for name in _names(node)}


def _offending(modules: dict[str, Path], *packages: str) -> dict[str, list[str]]:
    bad = {}
    for name, path in modules.items():
        hits = sorted(i for i in _imports(path) if any(i == p or i.startswith(f"{p}.") for p in packages))
        if hits:
            bad[name] = hits
    return bad


def test_accounts_imports_no_exchange_module():
    assert _offending(_modules("accounts"), "exchange") == {}


def test_core_imports_no_app():
    modules = _modules("core")

    assert {"core.errors", "core.service", "core.limits", "core.money", "core.clock", "core.db"} <= set(modules)
    assert _offending(modules, "accounts", "exchange", "config") == {}


def test_config_imports_no_exchange_service_or_model():
    assert _offending(_modules("config"), "exchange.models", "exchange.services", "exchange.api") == {}


def test_selectors_import_neither_services_nor_the_api():
    assert _offending(_modules("exchange/selectors"), "exchange.services", "exchange.api") == {}


def test_services_import_at_module_level_only():
    nested = {
        name: sorted(_imports_in_functions(path))
        for name, path in _modules("exchange/services").items()
        if _imports_in_functions(path)
    }

    assert nested == {}


def test_the_services_form_no_import_cycle_and_approvals_is_the_top():
    services = _modules("exchange/services")
    graph = {name: {i for i in _imports(path) if i in services and i != name} for name, path in services.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    assert [name for name in graph if reaches(name, name)] == []
    assert [name for name in graph if "exchange.services.approvals" in graph[name]] == []
    assert {"exchange.services.issuance", "exchange.services.compliance"} <= graph["exchange.services.approvals"]
