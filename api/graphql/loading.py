"""Loading related objects without a task per field.

Relation fields resolve synchronously when the operation already holds the object (a list
resolver prefetched the page's relations, or another field loaded it); only a miss goes through
the DataLoader (awaited by graphql-core). ``selected_paths`` tells a list resolver which
relations the query asks for, so it prefetches those and nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from strawberry import Info

    from api.graphql.context import Context

Fetch = Callable[["AsyncSession", list[Any]], Awaitable[Mapping[Any, Any]]]
"""A batch loader's repository function: ``fetch(session, keys) -> {key: value}``."""
LoaderFactory = Callable[["Context"], DataLoader[Any, Any]]


def batch_loader(fetch: Fetch, missing: Callable[[], Any] = lambda: None) -> LoaderFactory:
    """A DataLoader factory (one loader per operation, made by ``ctx.loaders.get``) over a
    repository function ``fetch(session, keys) -> {key: value}``; keys it leaves out get
    ``missing()`` (None, or e.g. ``list`` for one-to-many relations)."""

    def factory(ctx: Context) -> DataLoader[Any, Any]:
        async def load(keys: list[Any]) -> list[Any]:
            found = await fetch(ctx.session, keys)
            return [found[k] if k in found else missing() for k in keys]

        return DataLoader(load_fn=load)

    return factory


def now_or_later(loader: DataLoader[Any, Any], key: Hashable) -> Any:
    """The loaded value if the loader has it already, else the loader's pending awaitable."""
    future = loader.cache_map.get(key) if loader.cache else None
    if (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    ):
        return future.result()
    return loader.load(key)


def then(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(value)`` now, or after ``value`` is awaited when it is pending."""
    if not inspect.isawaitable(value):
        return fn(value)

    async def later() -> Any:
        return fn(await value)

    return later()


def selected_paths(info: Info[Any, Any]) -> set[str]:
    """Dotted paths of every field selected under the field being resolved (fragments
    flattened), e.g. {"edges", "edges.node", "edges.node.building", ...}."""
    out: set[str] = set()

    def walk(selections: Sequence[Selection], prefix: str) -> None:
        for sel in selections:
            if isinstance(sel, SelectedField):
                path = prefix + sel.name
                out.add(path)
                walk(sel.selections, path + ".")
            elif isinstance(sel, InlineFragment | FragmentSpread):
                walk(sel.selections, prefix)

    for field in info.selected_fields:
        walk(field.selections, "")
    return out
