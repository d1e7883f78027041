"""The business domains, in one list: models are loaded for migrations, and the root GraphQL
schema is assembled from each domain's ``schema`` module (Query / Mutation / Subscription)."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

DOMAINS: tuple[str, ...] = (
    "audit",
    "identity",
    "setting",
    "project",
    "unit",
    "listing",
    "media",
    "follow",
    "importing",
    "recommend",
    "client",
    "payment",
    "signing",
    "sales",
    "notify",
    "live",
)


def load_models() -> None:
    for name in DOMAINS:
        if importlib.util.find_spec(f"api.{name}.models") is not None:  # some have no tables
            importlib.import_module(f"api.{name}.models")


def schema_modules() -> list[ModuleType]:
    """Each domain's ``schema`` module, then its ``schema_<part>`` modules (a domain's GraphQL
    may be split by topic, e.g. ``api/client/schema_routing.py``)."""
    import pkgutil

    modules = []
    for name in DOMAINS:
        modules.append(importlib.import_module(f"api.{name}.schema"))
        package = importlib.import_module(f"api.{name}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("schema_"):
                modules.append(importlib.import_module(f"api.{name}.{info.name}"))
    return modules
