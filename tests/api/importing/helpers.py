"""Uploading files through GraphQL multipart requests (the spec apps and consoles use)."""

from __future__ import annotations

import json

import httpx

from tests.conftest import auth_headers

IMPORT_UNITS = """
mutation($projectId: ID!, $file: Upload!) {
  importUnits(projectId: $projectId, file: $file) {
    __typename
    ... on ImportReport { batchId rowsTotal imported skipped failed errors { row field message } }
    ... on UserError { code message field }
  }
}
"""

IMPORT_LISTINGS = """
mutation($file: Upload!) {
  importListings(file: $file) {
    __typename
    ... on ImportReport { batchId rowsTotal imported skipped failed errors { row field message } }
    ... on UserError { code message field }
  }
}
"""


async def upload(
    client: httpx.AsyncClient, tenant: str, query: str, variables: dict, filename: str,
    data: bytes, *, token: str | None = None, content_type: str = "application/octet-stream",
    expect_status: int = 200,
) -> dict:  # fmt: skip
    """POST a GraphQL multipart request with one file bound to ``variables.file``."""
    operations = json.dumps({"query": query, "variables": {**variables, "file": None}})
    resp = await client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, content_type)},
        headers=auth_headers(tenant, token),
    )
    assert resp.status_code == expect_status, resp.text
    return resp.json()
