"""Loading related objects without a task per field.

Relation fields resolve synchronously when the operation already holds the object (a list
resolver prefetched the page's relations, or another field loaded it); only a miss goes through
the DataLoader (awaited by graphql-core). ``selected_paths`` tells a list resolver which
relations the query asks for, so it prefetches those and nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField


def batch_loader(fetch, missing: Callable[[], Any] = lambda: None):
    """A DataLoader factory (one loader per operation, made by ``ctx.loaders.get``) over a
    repository function ``fetch(session, keys) -> {key: value}``; keys it leaves out get
    ``missing()`` (None, or e.g. ``list`` for one-to-many relations)."""
    from strawberry.dataloader import DataLoader

    def factory(ctx) -> DataLoader:
        async def load(keys: list):
            found = await fetch(ctx.session, keys)
            return [found[k] if k in found else missing() for k in keys]

        return DataLoader(load_fn=load)

    return factory


def now_or_later(loader, key) -> Any:
    """The loaded value if the loader has it already, else the loader's pending awaitable."""
    future = loader.cache_map.get(key) if loader.cache else None
    done = future is not None and future.done() and not future.cancelled()
    if done and future.exception() is None:
        return future.result()
    return loader.load(key)


def then(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(value)`` now, or after ``value`` is awaited when it is pending."""
    if not inspect.isawaitable(value):
        return fn(value)

    async def later():
        return fn(await value)

    return later()


def selected_paths(info) -> set[str]:
    """Dotted paths of every field selected under the field being resolved (fragments
    flattened), e.g. {"edges", "edges.node", "edges.node.building", ...}."""
    out: set[str] = set()

    def walk(selections, prefix: str) -> None:
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
