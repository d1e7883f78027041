"""The business domains, in one list: models are loaded for migrations, and the root GraphQL
schema is assembled from each domain's ``schema`` module (Query / Mutation / Subscription)."""

from __future__ import annotations

import importlib

DOMAINS: tuple[str, ...] = (
    "audit",
    "identity",
    "setting",
    "project",
    "unit",
    "listing",
    "follow",
    "importing",
)


def load_models() -> None:
    for name in DOMAINS:
        importlib.import_module(f"api.{name}.models")


def schema_modules() -> list:
    return [importlib.import_module(f"api.{name}.schema") for name in DOMAINS]
