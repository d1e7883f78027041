"""The root schema, assembled from each domain's Query / Mutation / Subscription classes."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from api.domains import schema_modules
from api.graphql.context import OperationScope
from api.graphql.errors import (
    AuthError,
    ConflictError,
    ErrorPolicy,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    apply_error_policy,
)
from api.graphql.permissions import Public
from api.graphql.types import SCALARS
from api.settings import Settings


@strawberry.type
class CoreQuery:
    @strawberry.field(permission_classes=[Public], description="The API version.")
    def api_version(self) -> str:
        return "0.1.0"


class AnjuSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Errors raised before an operation runs (e.g. a syntax error surfacing from the
        parser cache) reach only this hook, after the extensions exited: apply the policy here
        too, in place. The policy is idempotent, and it logs unexpected errors once, with a
        correlation id (instead of strawberry's own logging)."""
        errors[:] = apply_error_policy(errors)


def _collect(attr: str) -> tuple[type, ...]:
    return tuple(getattr(m, attr) for m in schema_modules() if hasattr(m, attr))


def build_schema(settings: Settings) -> strawberry.Schema:
    query = merge_types("Query", (CoreQuery, *_collect("Query")))
    mutations = _collect("Mutation")
    subscriptions = _collect("Subscription")
    return AnjuSchema(
        query=query,
        mutation=merge_types("Mutation", mutations) if mutations else None,
        subscription=merge_types("Subscription", subscriptions) if subscriptions else None,
        types=[
            ValidationError,
            NotFoundError,
            ConflictError,
            AuthError,
            RateLimitedError,
            PermissionDeniedError,
        ],
        config=StrawberryConfig(scalar_map=SCALARS),
        extensions=[
            lambda: ParserCache(maxsize=settings.graphql_cache_size),
            lambda: ValidationCache(maxsize=settings.graphql_cache_size),
            ErrorPolicy,  # outermost of the two: sees the commit error too
            OperationScope,
        ],
    )


def export_sdl(settings: Settings | None = None) -> str:
    return str(build_schema(settings or Settings())).rstrip() + "\n"
