"""The root schema, assembled from each domain's Query / Mutation / Subscription classes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import ASTValidationRule, DocumentNode, GraphQLError, parse, validate
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

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
    answer_unavailable,
    apply_error_policy,
)
from api.graphql.limits import check_length, check_operation_name, cost_rule, literal_faults
from api.graphql.permissions import Public
from api.graphql.types import SCALARS, overlong_list
from api.settings import Settings


@strawberry.type
class CoreQuery:
    @strawberry.field(permission_classes=[Public], description="The API version.")
    def api_version(self) -> str:
        return "0.1.0"


# graphql-core's hints ("Did you mean 'priceMin' or 'priceMax'?"), wherever they stand in the
# message (an input field's is followed by "Found: ..."); the names it quotes hold no "?".
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class AnjuSchema(strawberry.Schema):
    hide_suggestions = False
    limit_rules: tuple[type[ASTValidationRule], ...] = ()  # the WebSocket endpoint's too

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors raised before an operation runs (e.g. a syntax error surfacing from the
        parser cache) reach only this hook, after the extensions exited: apply the policy here
        too, in place. The policy is idempotent, and it logs unexpected errors once, with a
        correlation id (instead of strawberry's own logging)."""
        errors[:] = apply_error_policy(errors)
        if execution_context is not None:
            answer_unavailable(execution_context.context, errors)
        if self.hide_suggestions:  # production: no "Did you mean ...?" schema hints
            for error in errors:
                error.message = SUGGESTION.sub("", error.message)


class DocumentPolicy(SchemaExtension):
    """What strawberry's MaxTokensLimiter, ParserCache, ValidationCache, AddValidationRules and
    DisableIntrospection did as five extensions, in one with two hooks (every extension costs
    its hook contexts on every request, ~10 us each): parsing under the token limit and
    validating with the limit rules (and, in production, no introspection), both through
    the schema's LRU caches (``graphql_cache_size`` entries each; a validation is keyed by the
    parsed document, which the parse cache keeps identical for the same text). Variables
    holding a list longer than ``MAX_LIST_ITEMS`` are refused there too, before coercion.

    Before parsing, a document longer than ``max_chars`` is refused (in production, a full
    document from a caller without ``graphql.adhoc`` was refused even before, when the
    operation started: ``refuse_adhoc``). After: a document of several operations needs an
    operationName (the spec's GetOperation; strawberry would run the first)."""

    def __init__(
        self,
        max_tokens: int,
        max_chars: int,
        rules: tuple[type[ASTValidationRule], ...],
        caches: tuple[Callable[..., DocumentNode], Callable[..., list[GraphQLError]]],
    ) -> None:
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.rules = rules
        self.parse, self.validate = caches

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        assert ctx.query is not None  # operations reach the schema as text (HTTP, persisted)
        check_length(ctx.query, self.max_chars)
        ctx.parse_options["max_tokens"] = self.max_tokens
        ctx.graphql_document = self.parse(ctx.query, **ctx.parse_options)
        check_operation_name(ctx.graphql_document, ctx._provided_operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        ctx.validation_rules = ctx.validation_rules + self.rules
        errors = self.validate(ctx.schema._schema, ctx.graphql_document, ctx.validation_rules)
        errors = literal_faults(errors) if errors else errors
        refusal = None if errors else overlong_list(ctx.variables)
        if refusal is not None:  # a new list: the cached one is shared
            errors = [GraphQLError(refusal, extensions={"code": "BAD_USER_INPUT"})]
        ctx.pre_execution_errors = errors
        yield


def _collect(attr: str) -> tuple[type[Any], ...]:
    return tuple(getattr(m, attr) for m in schema_modules() if hasattr(m, attr))


def build_schema(settings: Settings) -> AnjuSchema:
    query = merge_types("Query", (CoreQuery, *_collect("Query")))
    mutations = _collect("Mutation")
    subscriptions = _collect("Subscription")
    # The limit rules are made once: the validation cache is keyed by the rule classes, and
    # strawberry's limiters make a new class per instance (a miss on every request).
    limit_rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        cost_rule(settings.graphql_max_cost),
    ]
    intro = [NoSchemaIntrospectionCustomRule] if settings.env == "production" else []
    rules = (*limit_rules, *intro)
    size = settings.graphql_cache_size
    caches = (functools.lru_cache(maxsize=size)(parse), functools.lru_cache(maxsize=size)(validate))
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
            lambda: DocumentPolicy(
                settings.graphql_max_tokens, settings.graphql_max_document_chars, rules, caches
            ),
            ErrorPolicy,  # outermost of the two: sees the commit error too
            OperationScope,
        ],
    )
    schema.hide_suggestions = settings.env == "production"
    schema.limit_rules = tuple(limit_rules)  # the WebSocket endpoint validates with them too
    return schema


def export_sdl(settings: Settings | None = None) -> str:
    return str(build_schema(settings or Settings())).rstrip() + "\n"
