"""GraphQL helpers shared by the API tests (real HTTP round trips through the live server)."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import gql

CREATE_PROJECT = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) {
    __typename
    ... on ProjectPayload { project { id name city district latitude longitude } }
    ... on UserError { code message field }
  }
}
"""

CREATE_BUILDING = """
mutation($input: CreateBuildingInput!) {
  createBuilding(input: $input) {
    __typename
    ... on BuildingPayload { building { id name floors project { id name } } }
    ... on UserError { code message field }
  }
}
"""

# The typed error a refused mutation returns (when its result union has it), by refusal code.
DENIAL_TYPES = {"FORBIDDEN": "PermissionDeniedError", "UNAUTHENTICATED": "AuthError"}


def typed_denial(res: dict, field: str, code: str) -> dict:
    """A mutation refused by its permission, as data: the typed error of ``code`` (FORBIDDEN:
    PermissionDeniedError, UNAUTHENTICATED: AuthError), not a field error. The selection must
    ask for ``... on UserError { code message field }``. Returns the error."""
    assert "errors" not in res, res
    error = res["data"][field]
    expected = (DENIAL_TYPES[code], code, None)
    assert (error["__typename"], error["code"], error["field"]) == expected, res
    assert isinstance(error["message"], str) and error["message"], res
    return error


async def create_project(client: httpx.AsyncClient, tenant: str, name: str, **fields) -> dict:
    """Create a project through GraphQL; returns the project (fails on a typed error)."""
    res = await gql(client, CREATE_PROJECT, {"input": {"name": name, **fields}}, tenant=tenant)
    assert "errors" not in res, res
    payload = res["data"]["createProject"]
    assert payload["__typename"] == "ProjectPayload", payload
    return payload["project"]


async def create_building(
    client: httpx.AsyncClient, tenant: str, project_id: str, name: str, floors: int = 10
) -> dict:
    res = await gql(
        client,
        CREATE_BUILDING,
        {"input": {"projectId": project_id, "name": name, "floors": floors}},
        tenant=tenant,
    )
    assert "errors" not in res, res
    payload = res["data"]["createBuilding"]
    assert payload["__typename"] == "BuildingPayload", payload
    return payload["building"]


class RawHTTPPool:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams, for load-style tests.

    httpx costs several ms of CPU per request in this process (more with many connections),
    which would dwarf the server's own work; this costs tens of microseconds. Each in-flight
    request owns one connection, so ``size`` bounds the concurrency."""

    def __init__(self, port: int, size: int):
        self.port = port
        self.size = size
        self._free: asyncio.Queue = asyncio.Queue()
        self._all: list = []

    async def __aenter__(self) -> RawHTTPPool:
        for _ in range(self.size):
            conn = await asyncio.open_connection("127.0.0.1", self.port)
            self._all.append(conn)
            self._free.put_nowait(conn)
        return self

    async def __aexit__(self, *exc) -> None:
        for _, writer in self._all:
            writer.close()

    async def post_json(self, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        data = json.dumps(body).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{head}\r\n"
        ).encode() + data
        reader, writer = await self._free.get()
        try:
            writer.write(request)
            raw_head = await reader.readuntil(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
            length = int({k.lower(): v for k, v in fields.items()}["content-length"])
            payload = json.loads(await reader.readexactly(length))
        finally:
            self._free.put_nowait((reader, writer))
        return status, payload


DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000


DEEP_OBJECTS = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


def body_with(variables: bytes, query: bytes = b"{ apiVersion }") -> bytes:
    return b'{"query":"' + query + b'","variables":' + variables + b"}"


def refusal(resp: httpx.Response, status: int = 400) -> str:
    """The edge's refusal: ``status``, the GraphQL error shape, BAD_USER_INPUT; its message."""
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/json")
    [error] = resp.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert "traceback" not in resp.text.lower()
    return error["message"]
