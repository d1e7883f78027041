"""The console's files as the gateway serves them: the single-page fallback, cache lifetimes,
the tenant of the subdomain written into the page, the invitation link, GraphiQL from the
gateway, and a clear page when nothing is built."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from api import console
from tenants.registry import TenantInfo


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><html><head><title>c</title></head><body><div id="root"></div>'
        '<script type="module" src="/console/assets/index-Ab12.js"></script></body></html>'
    )
    (tmp_path / "assets" / "index-Ab12.js").write_text("console.log('console')")
    (tmp_path / "graphiql.html").write_text("<html><head></head><body>graphiql page</body></html>")
    (tmp_path / "robots.txt").write_text("User-agent: *")
    (tmp_path.parent / "secret.txt").write_text("outside")
    return tmp_path


class WithTenant:
    """Plays the tenant middleware: the subdomain named tenant ``acme``."""

    def __init__(self, app, tenant):
        self.app, self.tenant = app, tenant

    async def __call__(self, scope, receive, send):
        scope.setdefault("state", {})["tenant"] = self.tenant
        await self.app(scope, receive, send)


def client_for(dist: Path, tenant=None) -> httpx.AsyncClient:
    app = WithTenant(Starlette(routes=console.routes(dist)), tenant)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_every_console_route_answers_the_page_never_cached(dist):
    async with client_for(dist) as c:
        for path in ("/console/", "/console/staff", "/console/invite?tenant=a&token=b"):
            resp = await c.get(path)
            assert resp.status_code == 200, path
            assert '<div id="root">' in resp.text
            assert resp.headers["cache-control"] == "no-cache"
            assert "default-src 'self'" in resp.headers["content-security-policy"]
            assert 'name="anju-tenant"' not in resp.text
        bare = await c.get("/console", follow_redirects=False)
        assert bare.status_code == 308 and bare.headers["location"] == "/console/"


async def test_hashed_assets_are_cached_for_a_year_and_a_missing_one_is_404(dist):
    async with client_for(dist) as c:
        resp = await c.get("/console/assets/index-Ab12.js")
        assert resp.status_code == 200 and resp.text == "console.log('console')"
        assert resp.headers["cache-control"] == console.IMMUTABLE
        assert (await c.get("/console/assets/index-OLD.js")).status_code == 404
        other = await c.get("/console/robots.txt")
        assert other.text == "User-agent: *" and other.headers["cache-control"] == "no-cache"


OUTSIDE = [
    "/console/../secret.txt",
    "/console/%2e%2e/secret.txt",
    "/console/assets/..%2f..%2fsecret.txt",
]


@pytest.mark.parametrize("path", OUTSIDE)
async def test_nothing_outside_the_build_is_served(dist, path):
    async with client_for(dist) as c:
        resp = await c.get(path)
        assert "outside" not in resp.text


async def test_a_write_is_refused(dist):
    async with client_for(dist) as c:
        assert (await c.post("/console/", content=b"x")).status_code == 405


async def test_the_subdomain_tenant_is_written_into_the_page(dist):
    acme = TenantInfo(
        id="00000000-0000-0000-0000-000000000001",
        slug="acme",
        name="Acme",
        schema_name="t_acme",
        status="active",
        plan="trial",
    )
    async with client_for(dist, acme) as c:
        resp = await c.get("/console/sign-in")
    assert '<meta name="anju-tenant" content="acme">' in resp.text


async def test_the_invitation_link_lands_on_the_console(dist):
    async with client_for(dist) as c:
        resp = await c.get("/invite?tenant=acme&token=abc%2Bdef", follow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["location"] == "/console/invite?tenant=acme&token=abc%2Bdef"


async def test_without_a_build_a_page_says_how_to_make_one(tmp_path):
    async with client_for(tmp_path / "none") as c:
        for path in ("/console/", "/console/staff", "/console/assets/x.js"):
            resp = await c.get(path)
            assert resp.status_code == 503
            assert "make console" in resp.text and "Node.js" in resp.text
    page = console.graphiql_page(tmp_path / "none")
    assert page.status_code == 503 and b"make console" in page.body


async def test_the_gateway_starts_and_answers_without_a_build(
    live_server_factory, tmp_path, monkeypatch
):
    monkeypatch.setattr(console, "DIST", tmp_path / "none")
    with live_server_factory(env="development", worker_in_process=False) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            page = await c.get("/console/")
            ide = await c.get("/graphql", headers={"Accept": "text/html"})
            ok = await c.post("/graphql", json={"query": "{ __typename }"})
    assert page.status_code == 503 and "make console" in page.text
    assert ide.status_code == 503 and "make console" in ide.text
    assert ok.json() == {"data": {"__typename": "Query"}}


async def test_graphiql_is_the_built_page_with_nothing_from_elsewhere(
    live_server_factory, dist, monkeypatch
):
    monkeypatch.setattr(console, "DIST", dist)
    with live_server_factory(env="development", worker_in_process=False) as server:
        async with httpx.AsyncClient(base_url=server.url) as c:
            ide = await c.get("/graphql", headers={"Accept": "text/html"})
            page = await c.get("/console/")
    assert ide.status_code == 200 and "graphiql page" in ide.text
    assert "unpkg" not in ide.text and "cdn" not in ide.text.lower()
    assert ide.headers["content-security-policy"] == console.CSP
    assert page.status_code == 200
