"""The documents each app sends, and the trusted-document manifest made from them.

Every ``<app>/<Operation>.graphql`` file holds one operation (the web console's documents live
beside its pages: ``console/src/**/<Operation>.graphql``; its client name is ``console``).
Its id is the SHA-256 of the file's text (hex). ``manifest.json`` maps id -> {app, name,
document}; ``anju contracts manifest`` writes it, a test fails when it is stale, and in
production the gateway runs app requests only from it (``documentId`` instead of ``query``).

``released.graphql`` is the schema the apps in users' hands were built against (``anju
contracts release`` when an app ships). A change from it that breaks what an app document uses
(a field removed or its type changed, an output made nullable, an enum value removed, a
required argument added...) fails ``make test`` unless the CHANGELOG announces it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent
APPS = ("agent", "owner", "staff", "console")
MANIFEST = ROOT / "manifest.json"
# Where each client's documents are: the apps' here, the web console's beside its pages.
SOURCES = {app: ROOT / app for app in APPS} | {"console": ROOT.parent / "console" / "src"}


@dataclass(frozen=True)
class Document:
    app: str
    name: str
    text: str

    @property
    def id(self) -> str:
        return document_id(self.text)


def document_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _paths(app: str) -> list[Path]:
    if app == "console":  # nested by page; node_modules and the generated code left out
        found = SOURCES[app].glob("**/*.graphql")
        return sorted(p for p in found if "node_modules" not in p.parts and "gql" not in p.parts)
    return sorted(SOURCES[app].glob("*.graphql"))


def documents() -> list[Document]:
    return [Document(app, path.stem, path.read_text()) for app in APPS for path in _paths(app)]


def manifest_text() -> str:
    entries = {d.id: {"app": d.app, "name": d.name, "document": d.text} for d in documents()}
    return json.dumps(dict(sorted(entries.items())), indent=1, ensure_ascii=False) + "\n"


def load_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """id -> document text, from the committed manifest (empty when there is none)."""
    if not path.exists():
        return {}
    return {k: v["document"] for k, v in json.loads(path.read_text()).items()}


# ---------------------------------------------------------------- breaking changes

RELEASED = ROOT / "released.graphql"
COORDINATE = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")


def used_coordinates(schema, docs: list[Document]) -> set[str]:
    """``Type.field`` of every field the documents select (and ``Type`` of its type), every
    input field and enum value their variables and results can carry."""
    from graphql import (
        FieldNode,
        GraphQLEnumType,
        GraphQLInputObjectType,
        TypeInfo,
        TypeInfoVisitor,
        Visitor,
        get_named_type,
        parse,
        type_from_ast,
        visit,
    )

    used: set[str] = set()

    def reach(named) -> None:  # a type a document can send or receive: all its members
        if named is None or named.name in used:
            return
        used.add(named.name)
        if isinstance(named, GraphQLEnumType):
            used.update(f"{named.name}.{v}" for v in named.values)
        elif isinstance(named, GraphQLInputObjectType):
            for name, field in named.fields.items():
                used.add(f"{named.name}.{name}")
                reach(get_named_type(field.type))

    class Collect(Visitor):
        def __init__(self, info: TypeInfo) -> None:
            super().__init__()
            self.info = info

        def enter_field(self, node: FieldNode, *_):
            parent, field = self.info.get_parent_type(), self.info.get_field_def()
            if parent is not None and field is not None:
                used.add(f"{parent.name}.{node.name.value}")
                used.add(parent.name)
                named = get_named_type(field.type)
                if isinstance(named, GraphQLEnumType):
                    reach(named)
                used.add(named.name)
                for arg in field.args.values():
                    reach(get_named_type(arg.type))

        def enter_variable_definition(self, node, *_):
            reach(get_named_type(type_from_ast(schema, node.type)))

    for doc in docs:
        info = TypeInfo(schema)
        visit(parse(doc.text), TypeInfoVisitor(info, Collect(info)))
    return used


def app_breaking_changes(released_sdl: str, current_sdl: str, docs: list[Document],
                         changelog: str) -> list[str]:  # fmt: skip
    """Breaking changes from the released schema to the current one that touch what an app
    document uses and that the CHANGELOG does not announce (as `Type.field`)."""
    from graphql import build_schema, find_breaking_changes

    released = build_schema(released_sdl)
    used = used_coordinates(released, docs)
    out = []
    for change in find_breaking_changes(released, build_schema(current_sdl)):
        text = change.description
        coordinates = {f"{t}.{m}" for t, m in COORDINATE.findall(text)}
        names = set(re.findall(r"\b[A-Z]\w*\b", text))
        if not (coordinates & used or (not coordinates and names & used)):
            continue
        if any(f"`{c}`" in changelog for c in coordinates | names):
            continue
        out.append(text)
    return out
