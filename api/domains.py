"""The business domains, in one list: models are loaded for migrations, and the root GraphQL
schema is assembled from each domain's ``schema`` module (Query / Mutation / Subscription)."""

from __future__ import annotations

import importlib
import importlib.util

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
    "notify",
    "live",
)


def load_models() -> None:
    for name in DOMAINS:
        if importlib.util.find_spec(f"api.{name}.models") is not None:  # some have no tables
            importlib.import_module(f"api.{name}.models")


def schema_modules() -> list:
    return [importlib.import_module(f"api.{name}.schema") for name in DOMAINS]
