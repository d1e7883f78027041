"""Writing live events: in the same transaction as the change, so a rolled-back change
publishes nothing and a committed one is never lost (the relay numbers and publishes it).

Domains declare which models are watched (``watch``): before each flush, every new, changed
or deleted watched object whose watched attributes moved becomes one outbox row, built from the
object as it will be written. Bulk statements that bypass the ORM call ``emit`` themselves."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from api.db import JsonObject
from api.ids import uuid7
from api.live.models import OutboxEvent

# An event's payload (``JsonObject``, stored as JSONB, carried as JSON) is free-form per kind.
Reactor = Callable[[Session, list[JsonObject]], None]


@dataclass(frozen=True)
class Watch:
    kind: str  # the entity kind: "unit", "listing", "follow"
    fields: dict[str, str]  # attribute -> event name: a change of any is an event
    payload: Callable[[Any], JsonObject]  # the event's payload from the object
    on_new: bool = False
    on_delete: bool = False


_WATCHES: dict[type, Watch] = {}
_REACTORS: list[Reactor] = []


def watch(
    model: type,
    kind: str,
    fields: dict[str, str],
    payload: Callable[[Any], JsonObject],
    *,
    on_new: bool = False,
    on_delete: bool = False,
) -> None:
    _WATCHES[model] = Watch(kind, fields, payload, on_new, on_delete)


def react(fn: Reactor) -> None:
    """``fn(sync_session, events)`` runs before each flush that carries new events (each
    ``{"kind", "entity", "payload"}``), in the same transaction: e.g. to queue a job."""
    _REACTORS.append(fn)


def emit(
    session: Session | AsyncSession, kind: str, entity_id: uuid.UUID, payload: JsonObject
) -> None:
    """Add one event to the session's transaction (``kind`` like ``unit.status``)."""
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        raise RuntimeError("live events need a tenant session")
    session.add(
        OutboxEvent(
            tenant_id=uuid.UUID(str(tenant_id)), kind=kind, entity_id=entity_id, payload=payload
        )
    )
    if _REACTORS:
        session.info.setdefault("live_events", []).append(
            {"kind": kind, "entity": str(entity_id), "payload": payload}
        )


def _changed(obj: object, fields: dict[str, str]) -> list[str]:
    attrs = inspect(obj).attrs
    return [name for attr, name in fields.items() if attrs[attr].history.has_changes()]


@event.listens_for(Session, "before_flush")
def _capture(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    if "tenant_id" not in session.info:
        return
    for obj in session.new:
        w = _WATCHES.get(type(obj))
        if w is not None and w.on_new:
            if obj.id is None:  # the column default would only run at INSERT
                obj.id = uuid7()
            emit(session, f"{w.kind}.created", obj.id, w.payload(obj))
    for obj in session.dirty:
        w = _WATCHES.get(type(obj))
        if w is None or obj in session.deleted:
            continue
        if moved := _changed(obj, w.fields):
            # The first watched field that moved names the event (status before price...).
            emit(session, f"{w.kind}.{moved[0]}", obj.id, w.payload(obj))
    for obj in session.deleted:
        w = _WATCHES.get(type(obj))
        if w is not None and w.on_delete:
            emit(session, f"{w.kind}.deleted", obj.id, w.payload(obj))
    events = session.info.pop("live_events", None)
    if events:
        for fn in _REACTORS:
            fn(session, events)
