"""Bring your own client: a libsql_client.Client object is accepted in place of a URL."""

from __future__ import annotations

from pathlib import Path

import libsql_client
import pytest

import sqlstore
from sqlstore.drivers.wrapped import WrappedClient


async def test_wrapped_libsql_client_runs_statements_and_atomic_batches(tmp_path: Path) -> None:
    own = libsql_client.create_client(f"file:{tmp_path / 'own.db'}")
    client = await sqlstore.connect(own)
    assert isinstance(client, WrappedClient) and client.backend == "libsql-client"
    await client.execute("CREATE TABLE w (id INTEGER PRIMARY KEY, v TEXT)")
    await client.batch(
        [
            ("INSERT INTO w VALUES (?, ?)", (1, "one")),
            ("INSERT INTO w VALUES (:id, :v)", {"id": 2, "v": "two"}),
        ]
    )
    with pytest.raises(sqlstore.QueryError):
        await client.batch(
            [("INSERT INTO w VALUES (?, ?)", (3, "three")), "INSERT INTO missing VALUES (1)"]
        )
    rows = (await client.execute("SELECT id, v FROM w ORDER BY id")).rows
    assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]
    assert rows[0]["v"] == "one"
    with pytest.raises(sqlstore.ValidationError):
        await client.execute("BEGIN")
    await client.close()


async def test_store_on_a_wrapped_client(tmp_path: Path) -> None:
    own = libsql_client.create_client(f"file:{tmp_path / 'store.db'}")
    async with sqlstore.Store(own) as store:
        assert store.backend == "wrapped"
        health = await store.health_check()
        assert health["ok"] is True and health["schema_version"] >= 1
