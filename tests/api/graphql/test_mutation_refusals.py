"""Every mutation that answers a refusal as data runs its work through ``attempt``
(api/graphql/errors.py): in a savepoint by default, so a refusal leaves nothing; ``keeps=``
is the named opt-out for a refusal that records a fact. The rule and the list of opt-outs are
in docs/architecture.md ("Refused mutations")."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

from api.errors import DomainError
from api.graphql import errors
from api.graphql.errors import UserError
from api.graphql.schema import _collect

ROOT = Path(__file__).resolve().parents[3]


def _typed_error_mutations() -> dict[str, object]:
    """graphqlName -> resolver of every mutation whose result union has a UserError."""
    found = {}
    for cls in _collect("Mutation"):
        for f in cls.__strawberry_definition__.fields:
            members = [t for t in getattr(f.type, "types", ()) if isinstance(t, type)]
            if any(issubclass(t, UserError) for t in members):
                camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), f.python_name)
                found[f.graphql_name or camel] = f.base_resolver.wrapped_func
    return found


def _tree(fn) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(fn)))


def _called(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _reach(fn) -> list:
    """The resolver and the functions of its module it calls, and they call (``_signed_in``)."""
    module = inspect.getmodule(fn)
    out, todo = [], [fn]
    while todo:
        part = todo.pop()
        out.append(part)
        for node in ast.walk(_tree(part)):
            if isinstance(node, ast.Call) and (name := _called(node)):
                helper = getattr(module, name, None)
                if inspect.isfunction(helper) and helper.__module__ == module.__name__:
                    todo += [] if helper in out or helper in todo else [helper]
    return out


def _problems(fn) -> tuple[list[str], bool]:
    """(what is wrong, whether it opts out with keeps=)."""
    module = inspect.getmodule(fn)
    wrong, attempted, keeps = [], False, False
    for part in _reach(fn):
        for node in ast.walk(_tree(part)):
            if isinstance(node, ast.Call):
                name = _called(node)
                if name == "attempt" and getattr(module, "attempt", None) is errors.attempt:
                    attempted = True
                if name == "user_error":
                    wrong.append(f"{part.__name__} makes a typed error itself (user_error)")
                keeps = keeps or any(k.arg == "keeps" for k in node.keywords)
            if isinstance(node, ast.ExceptHandler):
                caught = (
                    eval(ast.unparse(node.type), vars(module)) if node.type else BaseException
                )  # the names of an except clause of our code
                for c in caught if isinstance(caught, tuple) else (caught,):
                    if issubclass(c, DomainError) or issubclass(DomainError, c):
                        wrong.append(f"{part.__name__} catches {c.__name__} itself")
    if not attempted:
        wrong.append("never calls attempt()")
    return wrong, keeps


def test_every_mutation_refuses_through_attempt():
    mutations = _typed_error_mutations()
    assert len(mutations) > 60  # the walk found the schema's mutations
    wrong = {name: p for name, fn in mutations.items() if (p := _problems(fn)[0])}
    assert wrong == {}


def test_the_opt_outs_are_the_documented_ones():
    """docs/architecture.md lists every mutation whose refusal keeps a write, and only those."""
    kept = {name for name, fn in _typed_error_mutations().items() if _problems(fn)[1]}
    doc = (ROOT / "docs/architecture.md").read_text()
    section = doc.split("## Refused mutations", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert kept == listed
