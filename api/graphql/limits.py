"""Limits on what one GraphQL document may ask for, checked before anything runs.

* length in characters (comments count), before parsing: ``check_length``;
* tokens (the parser stops counting past the limit), depth, aliases: strawberry's extensions;
* cost: ``CostLimit`` below, computed on the document alone (no per-field resolve hook). Each
  field costs 1; a paginated field (an argument ``first``) multiplies what it selects by its
  page size (a variable counts as the largest page, ``MAX_PAGE``); the list that holds the page
  (``edges``, ``nodes``, ``items``) adds no multiplier of its own; any other list multiplies by
  ``LIST_FACTOR``. Fragments are expanded (a cycle is left to the standard NoFragmentCycles rule).
"""

from __future__ import annotations

import re

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

MAX_PAGE = 100
LIST_FACTOR = 10
PAGE_ARGS = ("first", "last")
# The list that *is* a paginated field's page (its size is the page's): no factor of its own.
PAGE_LISTS = ("edges", "nodes", "items")


def check_length(text: str, max_chars: int) -> None:
    """The document's length, comments and whitespace included (the token limit skips them),
    checked before it is parsed."""
    if len(text) > max_chars:
        raise GraphQLError(
            f"the document is {len(text):,} characters long, more than the limit of {max_chars:,}",
            extensions={"code": "BAD_USER_INPUT", "maxChars": max_chars},
        )


def check_operation_name(document: DocumentNode, operation_name: str | None) -> None:
    """Without an operationName a document must hold one operation (GraphQL spec,
    GetOperation): never run the first of several."""
    if operation_name is None:
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) > 1:
            raise GraphQLError(
                f"the document holds {len(ops)} operations: name the one to run (operationName)",
                extensions={"code": "BAD_USER_INPUT"},
            )


def literal_faults(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Validation errors are the document's fault. graphql-core reports a literal a scalar could
    not read with the exception it caught (e.g. Python's int-str conversion limit for a
    5,000-digit integer) as the original error, which the error policy would mask as INTERNAL:
    such an error becomes BAD_USER_INPUT, without the exception's text."""
    out: list[GraphQLError] = []
    for error in errors:
        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError):
            message = _CAUGHT.sub(", found", error.message)
            error = GraphQLError(message, error.nodes, extensions={"code": "BAD_USER_INPUT"})
        out.append(error)
    return out


_CAUGHT = re.compile(r", but encountered error '.*'; found", re.DOTALL)


def cost_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
            schema = self.context.schema

            root = schema.get_root_type(node.operation)
            if root is None:
                return
            fragments = {
                f.name.value: f
                for f in self.context.document.definitions
                if isinstance(f, FragmentDefinitionNode)
            }
            cost = _selection_cost(node.selection_set, root, schema, fragments, set(), max_cost)
            if cost > max_cost:
                name = node.name.value if node.name else "the operation"
                self.report_error(
                    GraphQLError(
                        f"{name} costs {cost}, more than the limit of {max_cost}: ask for smaller "
                        "pages or fewer nested lists",
                        node,
                        extensions={"code": "BAD_USER_INPUT", "cost": cost, "maxCost": max_cost},
                    )
                )

    return CostLimit


def _page_size(field: FieldNode) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value in PAGE_ARGS:
            if isinstance(arg.value, IntValueNode):
                text = arg.value.value  # may have thousands of digits: Int validation says so
                if len(text) > 9:
                    return 0 if text.startswith("-") else MAX_PAGE
                return max(0, min(int(text), MAX_PAGE))
            return MAX_PAGE  # a variable: the largest page the server gives
    return None


Fragments = dict[str, FragmentDefinitionNode]


def _selection_cost(
    selection_set: SelectionSetNode | None,
    parent: GraphQLNamedType,
    schema: GraphQLSchema,
    fragments: Fragments,
    seen: set[str],
    cap: int,
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            total += _field_cost(sel, parent, schema, fragments, seen, cap)
        elif isinstance(sel, InlineFragmentNode):
            target = parent
            if sel.type_condition is not None:
                target = schema.get_type(sel.type_condition.name.value) or parent
            total += _selection_cost(sel.selection_set, target, schema, fragments, seen, cap)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            frag = fragments.get(name)
            if frag is None or name in seen:
                continue
            target = schema.get_type(frag.type_condition.name.value) or parent
            total += _selection_cost(
                frag.selection_set, target, schema, fragments, seen | {name}, cap
            )
        if total > cap:  # already over: stop walking a huge document
            return total
    return total


def _field_cost(
    field: FieldNode,
    parent: GraphQLNamedType,
    schema: GraphQLSchema,
    fragments: Fragments,
    seen: set[str],
    cap: int,
) -> int:
    name = field.name.value
    if name.startswith("__"):
        return 1
    fields = getattr(parent, "fields", None) or {}
    definition = fields.get(name)
    if definition is None:  # an unknown field: the standard rules report it
        return 1
    target = get_named_type(definition.type)
    inner = _selection_cost(field.selection_set, target, schema, fragments, seen, cap)
    page = _page_size(field)
    if page is not None:
        factor = page
    elif is_list_type(get_nullable_type(definition.type)) and name not in PAGE_LISTS:
        factor = LIST_FACTOR
    else:
        factor = 1
    if not isinstance(target, GraphQLObjectType) and field.selection_set is None:
        return 1
    return 1 + factor * inner
