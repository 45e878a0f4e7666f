"""Several processes on one database at once: no 'database is locked', nothing lost."""

from __future__ import annotations

import sqlstore
from sqlstore.drivers import Client
from sqlstore.migrations import SCHEMA_VERSION
from tests.processes import run_workers


async def test_four_processes_write_one_database(client: Client, db_url: str, table: str) -> None:
    await client.execute(
        f"CREATE TABLE {table} (worker INTEGER, i INTEGER, PRIMARY KEY (worker, i))"
    )
    n = 300
    outcomes = await run_workers(*(["write", db_url, table, str(w), str(n)] for w in range(4)))
    for code, _, err in outcomes:
        assert code == 0, err
        assert "locked" not in err
    total = (await client.execute(f"SELECT count(*) FROM {table}")).scalar()
    assert total == 4 * (n + 2 * (n // 10))
    per_worker = await client.execute(f"SELECT worker, count(*) FROM {table} GROUP BY worker")
    assert sorted(tuple(r) for r in per_worker.rows) == [(w, n + 2 * (n // 10)) for w in range(4)]


async def test_four_processes_initialize_a_fresh_database(own_db_url: str) -> None:
    url = own_db_url
    outcomes = await run_workers(*(["initialize", url] for _ in range(4)))
    for code, out, err in outcomes:
        assert code == 0, err
        assert out.strip() == str(SCHEMA_VERSION)
    async with sqlstore.Store(url) as store:
        versions = await store.execute("SELECT version, name FROM schema_migrations")
        assert [tuple(r) for r in versions.rows] == [(SCHEMA_VERSION, "schema.sql")]
