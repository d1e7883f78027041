"""The root schema, assembled from each domain's Query / Mutation / Subscription classes."""

from __future__ import annotations

import re

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
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
from api.graphql.limits import cost_rule
from api.graphql.permissions import Public
from api.graphql.types import SCALARS
from api.settings import Settings


@strawberry.type
class CoreQuery:
    @strawberry.field(permission_classes=[Public], description="The API version.")
    def api_version(self) -> str:
        return "0.1.0"


SUGGESTION = re.compile(r"\s*Did you mean .*\?$", re.DOTALL)


class AnjuSchema(strawberry.Schema):
    hide_suggestions = False

    def process_errors(self, errors, execution_context=None) -> None:
        """Errors raised before an operation runs (e.g. a syntax error surfacing from the
        parser cache) reach only this hook, after the extensions exited: apply the policy here
        too, in place. The policy is idempotent, and it logs unexpected errors once, with a
        correlation id (instead of strawberry's own logging)."""
        errors[:] = apply_error_policy(errors)
        if self.hide_suggestions:  # production: no "Did you mean ...?" schema hints
            for error in errors:
                error.message = SUGGESTION.sub("", error.message)


def _collect(attr: str) -> tuple[type, ...]:
    return tuple(getattr(m, attr) for m in schema_modules() if hasattr(m, attr))


def build_schema(settings: Settings) -> strawberry.Schema:
    query = merge_types("Query", (CoreQuery, *_collect("Query")))
    mutations = _collect("Mutation")
    subscriptions = _collect("Subscription")
    # The limit rules are made once: the validation cache is keyed by the rule classes, and
    # strawberry's limiters make a new class per instance (a miss on every request).
    limit_rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        cost_rule(settings.graphql_max_cost),
    ]
    schema = AnjuSchema(
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
            lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
            lambda: ParserCache(maxsize=settings.graphql_cache_size),
            lambda: ValidationCache(maxsize=settings.graphql_cache_size),
            lambda: AddValidationRules(limit_rules),
            *([DisableIntrospection] if settings.env == "production" else []),
            ErrorPolicy,  # outermost of the two: sees the commit error too
            OperationScope,
        ],
    )
    schema.hide_suggestions = settings.env == "production"
    schema.limit_rules = limit_rules  # the WebSocket endpoint validates with them too
    return schema


def export_sdl(settings: Settings | None = None) -> str:
    return str(build_schema(settings or Settings())).rstrip() + "\n"
