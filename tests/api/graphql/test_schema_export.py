"""The committed SDL (mobile_contracts/schema.graphql) is the schema the gateway serves."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    build_client_schema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    get_introspection_query,
)

import mobile_contracts
from api.graphql.schema import export_sdl
from tests.conftest import gql

SDL_PATH = Path(mobile_contracts.__file__).parent / "schema.graphql"


def test_committed_schema_is_current():
    committed = SDL_PATH.read_text()
    assert committed == export_sdl(), (
        f"{SDL_PATH} is stale: run `anju schema export` and commit the result"
    )


async def test_live_schema_matches_committed_sdl(client):
    """What the running gateway answers to introspection is the committed contract: no
    breaking and no dangerous difference either way."""
    res = await gql(client, get_introspection_query(descriptions=True))
    assert "errors" not in res, res
    served = build_client_schema(res["data"])
    committed = build_schema(SDL_PATH.read_text())
    assert find_breaking_changes(committed, served) == []
    assert find_dangerous_changes(committed, served) == []
    assert find_breaking_changes(served, committed) == []
    assert set(served.type_map) == set(committed.type_map)
