"""The layout rule "queries live in the repository, rules in the service, resolvers are thin"
(docs/architecture.md, "Design rules"), checked on the source: no GraphQL module
(``api/**/schema.py``, ``api/**/schema_<topic>.py``) builds a SQLAlchemy statement or runs one
on a session itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = {"select", "update", "insert", "delete"}
SESSION_CALLS = {"execute", "scalars", "scalar", "get", "stream", "stream_scalars"}
# "<path>:<line>" of a query a resolver still runs, with the reason it has not moved yet. The
# list may only shrink: an entry that no longer matches a finding fails too.
ALLOWED: dict[str, str] = {}


def _sessionish(node: ast.expr) -> bool:
    """``session``, ``ctx.session``, ``info.context.session``, ``db_session``..."""
    if isinstance(node, ast.Name):
        return "session" in node.id
    if isinstance(node, ast.Attribute):
        return "session" in node.attr
    return False


def queries_in(source: str) -> list[tuple[int, str]]:
    """(line, what) of each statement built from SQLAlchemy's ``select``/``update``/
    ``insert``/``delete`` (however imported) and each ``execute``/``scalars``/``scalar``/
    ``get``/``stream`` called on a session."""
    tree = ast.parse(source)
    names: dict[str, str] = {}  # local name -> SQLAlchemy construct
    modules: set[str] = set()  # local names bound to a sqlalchemy module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in STATEMENTS:
                    names[alias.asname or alias.name] = alias.name
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or alias.name.split(".")[0])
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in names:
            found.append((node.lineno, f"{names[f.id]}()"))
        elif isinstance(f, ast.Attribute):
            base = f.value
            if f.attr in STATEMENTS and isinstance(base, ast.Name) and base.id in modules:
                found.append((node.lineno, f"{base.id}.{f.attr}()"))
            elif f.attr in SESSION_CALLS and _sessionish(base):
                found.append((node.lineno, f"session.{f.attr}()"))
    return sorted(found)


def _graphql_modules() -> list[Path]:
    api = ROOT / "api"
    return sorted({*api.rglob("schema.py"), *api.rglob("schema_*.py")})


def test_no_resolver_module_runs_a_query():
    """Each finding names the file and line: move the query into the domain's repository (or
    service) and call that."""
    found = {}
    for path in _graphql_modules():
        rel = path.relative_to(ROOT).as_posix()
        for line, what in queries_in(path.read_text()):
            found[f"{rel}:{line}"] = what
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert unexpected == {}, "queries in GraphQL modules (move them to repository/service)"
    stale = set(ALLOWED) - set(found)
    assert stale == set(), "ALLOWED names queries that are gone: remove them from the list"


def test_the_check_finds_statements_and_session_calls_but_not_words():
    source = '''
"""Docs may say select( or session.execute( freely."""
import sqlalchemy as sa
from sqlalchemy import select as pick
from sqlalchemy.dialects.postgresql import insert


async def resolve(info, loaders):
    """update(x) in a docstring is no query."""
    rows = await info.context.session.scalars(pick(Thing))
    await info.context.session.execute(insert(Thing).values(a=1))
    await loaders.get("x", f).load(1)
    row = await session.get(Thing, 1)
    stmt = sa.delete(Thing)
    {}.get("select(")
    return service.update(info.context.session, rows)
'''
    assert queries_in(source) == [
        (10, "select()"),
        (10, "session.scalars()"),
        (11, "insert()"),
        (11, "session.execute()"),
        (13, "session.get()"),
        (14, "sa.delete()"),
    ]


def test_create_app_only_assembles():
    """HTTP handlers live in their domain's ``http.py`` (docs/architecture.md, "Layout"):
    ``api/app.py`` defines no function that takes a request."""
    tree = ast.parse((ROOT / "api" / "app.py").read_text())
    handlers = [
        f"{node.name} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and any(a.arg in ("request", "websocket", "scope") for a in node.args.args)
    ]
    assert handlers == []


def test_the_formatter_decides_the_layout_of_the_code():
    """``ruff format`` is the layout of the code (api/, tenants/, tests/, bench/): no
    ``fmt: skip`` / ``fmt: off`` there
    (a table of literals that reads better as written would say so next to its marker, and be
    listed here)."""
    allowed: dict[str, str] = {}
    marked = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("api", "tenants", "tests", "bench")
        for path in sorted((ROOT / top).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"#\s*fmt:\s*(skip|off)", line)
    ]
    assert [m for m in marked if m.split(":")[0] not in allowed] == []
