"""The ``anju`` command line, run as a subprocess against the test database: tenant commands,
one-line errors without tracebacks, exit codes of the migration walk, schema export check.

``anju tenants migrate`` walks every tenant in the database (other tests' too), which is what
it does in production; assertions about specific lines only look at this module's tenants."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenants.migrate import downgrade_tenant, head, tenant_versions
from tenants.provisioning import create_tenant, drop_tenant
from tenants.registry import get_tenant
from tests.conftest import unique_slug

ROOT = Path(__file__).resolve().parents[2]
ANJU = Path(sys.executable).with_name("anju")
HEAD = head("tenant")
SUMMARY = re.compile(
    rf"^\d+ tenants: \d+ migrated, \d+ already at head {HEAD}, (\d+) failed in [\d.]+s$"
)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def out_lines(self) -> list[str]:
        return self.out.splitlines()


@pytest.fixture(scope="module")
def cli_env(db_url, tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
    env.update(
        ANJU_DATABASE_URL=db_url.set(drivername="postgresql").render_as_string(hide_password=False),
        ANJU_DATA_DIR=str(tmp_path_factory.mktemp("anju-data")),
        ANJU_ENV="test",
        ANJU_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def anju(cli_env):
    """``anju(*args)`` runs one command; ``anju.many([...], [...])`` runs several at once."""

    def run(*args: str) -> Run:
        proc = subprocess.run(
            [str(ANJU), *args],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def many(*commands: list[str]) -> list[Run]:
        with ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(lambda c: run(*c), commands))

    run.many = many
    return run


def assert_one_line_error(r: Run, *words: str) -> str:
    assert r.code != 0, r
    assert "Traceback" not in r.err + r.out
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: "), r.err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def listed(r: Run) -> dict[str, list[str]]:
    """slug -> [status, plan, schema, name...] from ``anju tenants list``."""
    return {parts[0]: parts[1:] for parts in (line.split() for line in r.out_lines) if parts}


async def test_create_then_list(anju, engine):
    slug = unique_slug("cli")
    r = anju("tenants", "create", "--slug", slug, "--name", "Harbour Homes", "--plan", "pro")
    assert r.code == 0, r
    assert r.err == ""
    schema = "t_" + slug.replace("-", "_")
    assert re.fullmatch(rf"created {slug} \(schema {schema}\) in [\d.]+ ms\n", r.out), r.out

    t = await get_tenant(engine, slug)
    assert (t.name, t.plan, t.schema_name) == ("Harbour Homes", "pro", schema)
    assert await tenant_versions(engine, [schema]) == {schema: HEAD}

    r = anju("tenants", "list")
    assert r.code == 0, r
    assert listed(r)[slug] == ["active", "pro", schema, "Harbour", "Homes"]


async def test_bad_input_gives_one_line_error(anju, engine, make_tenant):
    taken = await make_tenant()
    bad_slug, duplicate, suspend = anju.many(
        ["tenants", "create", "--slug", "Bad_Slug", "--name", "X"],
        ["tenants", "create", "--slug", taken.slug, "--name", "X"],
        ["tenants", "suspend", unique_slug("ghost")],
    )
    assert_one_line_error(bad_slug, "slug must be lowercase")
    assert_one_line_error(duplicate, f"'{taken.slug}' already exists")
    assert_one_line_error(suspend, "no tenant with slug 'ghost-")
    for r in (bad_slug, duplicate, suspend):
        assert r.out == ""
    assert await get_tenant(engine, "Bad_Slug") is None
    assert (await get_tenant(engine, taken.slug)).name == taken.name


def test_unreachable_database_gives_one_line_error(cli_env):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**cli_env, "ANJU_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/anju"}
    proc = subprocess.run(
        [str(ANJU), "tenants", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(Run(proc.returncode, proc.stdout, proc.stderr), "database")


async def test_suspend_and_resume_flip_status(anju, engine, make_tenant):
    t = await make_tenant()
    r = anju("tenants", "suspend", t.slug)
    assert (r.code, r.out, r.err) == (0, f"{t.slug}: suspended\n", "")
    assert (await get_tenant(engine, t.slug)).status == "suspended"

    r = anju("tenants", "resume", t.slug)
    assert (r.code, r.out, r.err) == (0, f"{t.slug}: active\n", "")
    assert (await get_tenant(engine, t.slug)).status == "active"


async def test_status_and_migrate_bring_tenants_to_head(anju, engine, make_tenant):
    current = await make_tenant()
    behind = await make_tenant()
    await downgrade_tenant(engine, behind.schema_name, "0001")

    r = anju("tenants", "status")
    assert r.code == 0, r
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in r.out_lines[:-1]}
    assert rows[behind.slug] == f"0001 (head {HEAD})"
    assert current.slug not in rows
    assert re.fullmatch(rf"{len(rows)} tenant\(s\) not at head {HEAD}", r.out_lines[-1])

    r = anju("tenants", "migrate")
    assert r.code == 0, r
    assert "Traceback" not in r.err + r.out
    m = SUMMARY.match(r.out_lines[-1])
    assert m, r.out
    assert m.group(1) == "0"
    assert any(
        line.split()[:4] == ["ok", behind.slug, "0001", "->"] and line.split()[4] == HEAD
        for line in r.out_lines
    ), r.out
    assert not any(current.slug in line for line in r.out_lines)  # skipped: no line
    assert await tenant_versions(engine, [behind.schema_name]) == {behind.schema_name: HEAD}


async def test_migrate_with_a_broken_tenant_exits_non_zero(anju, engine):
    broken = (await create_tenant(engine, unique_slug("clibroken"), "Broken")).tenant
    try:
        await downgrade_tenant(engine, broken.schema_name, "0001")
        async with engine.begin() as conn:  # 0001 -> 0002 creates "building": take the name
            await conn.exec_driver_sql(f'CREATE TABLE "{broken.schema_name}".building (x int)')

        r = anju("tenants", "migrate")
        assert r.code != 0, r
        assert "Traceback" not in r.err + r.out
        failed = [line for line in r.out_lines if line.startswith("FAILED")]
        mine = [line for line in failed if broken.slug in line]
        assert len(mine) == 1, r.out
        assert "building" in mine[0] and "already exists" in mine[0]
        m = SUMMARY.match(r.out_lines[-1])
        assert m, r.out
        assert int(m.group(1)) == len(failed) >= 1
        assert await tenant_versions(engine, [broken.schema_name]) == {broken.schema_name: "0001"}
    finally:
        await drop_tenant(engine, broken.slug)


def test_schema_export_check_passes_for_the_committed_file(anju):
    r = anju("schema", "export", "--check")
    assert r.code == 0, r
    assert r.out.strip() == "mobile_contracts/schema.graphql is current"


def test_schema_export_check_fails_for_a_stale_file(anju, tmp_path):
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { stale: Int }\n")
    r = anju("schema", "export", "--check", "--path", str(stale))
    assert_one_line_error(r, f"{stale} is stale", "anju schema export")
    assert stale.read_text() == "type Query { stale: Int }\n"  # --check never writes


async def test_create_with_time_zone_locale_and_currency(anju, engine):
    slug = unique_slug("cliregion")
    r = anju(
        "tenants",
        "create",
        "--slug",
        slug,
        "--name",
        "Bay Homes",
        "--time-zone",
        "America/Los_Angeles",
        "--locale",
        "en",
        "--currency",
        "usd",
    )
    assert r.code == 0, r
    t = await get_tenant(engine, slug)
    assert (t.time_zone, t.locale, t.currency) == ("America/Los_Angeles", "en", "USD")


async def test_usage_errors_are_one_line_and_exit_2(anju, engine):
    slug = unique_slug("cliusage")
    create = ["tenants", "create", "--slug", slug, "--name", "X"]
    runs = anju.many(
        ["tenants", "create", "--slug", slug],
        ["tenants", "nosuch"],
        [*create, "--bogus"],
        [*create, "--plan", "gold"],
        [*create, "--time-zone", "Mars/Olympus_Mons"],
        [*create, "--time-zone", "localtime"],
        [*create, "--locale", "fr"],
        [*create, "--currency", "XYZ"],
        ["tenants", "migrate", "--parallel", "0"],
    )
    words = [
        ("Missing option '--name'",),
        ("No such command 'nosuch'",),
        ("No such option: --bogus",),
        ("'--plan'", "free", "pro", "standard"),
        ("'--time-zone'", "Mars/Olympus_Mons"),
        ("'--time-zone'", "localtime"),
        ("'--locale'", "zh-CN, en"),
        ("'--currency'", "XYZ"),
        ("'--parallel'",),
    ]
    for r, expected in zip(runs, words, strict=True):
        assert_one_line_error(r, *expected)
        assert r.code == 2, r
        assert r.out == "", r
    assert await get_tenant(engine, slug) is None


def test_migrate_from_an_unknown_slug_is_refused(anju):
    r = anju("tenants", "migrate", "--from", "nosuch")
    assert_one_line_error(r, "--from", "no tenant with slug 'nosuch'")
    assert r.out == ""
