"""Store: schema.sql and migrations, idempotent initialize, health check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import sqlstore
from sqlstore import migrations
from sqlstore.migrations import SCHEMA_VERSION, schema_statements, split_statements
from sqlstore.store import migrate

EXPECTED_TABLES = {
    "schema_migrations",
    "teams",
    "threads",
    "runs",
    "messages",
    "feedback",
    "approvals",
    "checkpoints",
    "checkpoint_writes",
}


async def test_initialize_creates_schema_and_records_version(store: sqlstore.Store) -> None:
    tables = await store.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {r[0] for r in tables.rows} >= EXPECTED_TABLES
    assert await store.schema_version() == SCHEMA_VERSION
    await store.initialize()  # idempotent
    await store.initialize()
    versions = await store.execute("SELECT count(*), max(version) FROM schema_migrations")
    assert versions.values[0] == (1, SCHEMA_VERSION)  # a fresh database: schema.sql, once


async def test_a_version_1_database_gets_every_migration(tmp_path: Path) -> None:
    """A database made by schema.sql at version 1 (before messages_thread_time, tombstones
    and checkpoints_newest) is brought to the current version by the numbered migrations,
    and ends at schema.sql's shape."""
    url = f"file:{tmp_path / 'v1.db'}"
    async with sqlstore.Store(url) as store:
        await store.batch(
            [
                "DROP INDEX messages_thread_time",
                "DROP TABLE tombstones",
                "DROP INDEX checkpoints_newest",
                "DELETE FROM schema_migrations",
                "INSERT INTO schema_migrations VALUES (1, 'schema.sql', 0)",
            ]
        )
    async with sqlstore.Store(url) as store:
        assert await store.schema_version() == SCHEMA_VERSION == 4
        found = await store.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN"
            " ('messages_thread_time', 'tombstones', 'tombstones_deleted', 'checkpoints_newest')"
        )
        assert found.scalar() == 4


async def test_every_schema_index_exists(store: sqlstore.Store) -> None:
    declared = {
        s.split(" IF NOT EXISTS ")[1].split()[0]
        for s in schema_statements()
        if s.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))
    }
    found = await store.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    assert declared <= {r[0] for r in found.rows}


async def test_health_check(store: sqlstore.Store, db_url: str) -> None:
    health = await store.health_check()
    assert health["ok"] is True
    assert health["backend"] == ("local" if db_url.startswith("file:") else "remote")
    assert health["schema_version"] == SCHEMA_VERSION
    assert isinstance(health["latency_ms"], float) and health["latency_ms"] >= 0


async def test_foreign_keys_cascade(store: sqlstore.Store) -> None:
    """Cascades declared in schema.sql are enforced on every connection."""
    from tests.conftest import unique

    thread = unique("thread")
    await store.batch(
        [
            (
                "INSERT INTO threads (id, user_id, root_id, created_at, updated_at)"
                " VALUES (?, 'u', ?, 0, 0)",
                (thread, thread),
            ),
            (
                "INSERT INTO messages (id, thread_id, seq, role, content, created_at)"
                " VALUES (?, ?, 1, 'user', '[]', 0)",
                (unique("m"), thread),
            ),
        ]
    )
    await store.execute("DELETE FROM threads WHERE id = ?", (thread,))
    left = await store.execute("SELECT count(*) FROM messages WHERE thread_id = ?", (thread,))
    assert left.scalar() == 0
    with pytest.raises(sqlstore.QueryError):
        await store.execute(
            "INSERT INTO messages (id, thread_id, seq, role, content, created_at)"
            " VALUES (?, ?, 1, 'user', '[]', 0)",
            (unique("m"), unique("missing-thread")),
        )


async def test_store_not_initialized_and_closed() -> None:
    store = sqlstore.Store("file::memory:")
    with pytest.raises(sqlstore.UnavailableError):
        store.client  # noqa: B018
    async with store:
        assert (await store.execute("SELECT 1")).scalar() == 1
    with pytest.raises(sqlstore.UnavailableError):
        await store.execute("SELECT 1")


async def test_migrations_apply_in_order_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, table: str
) -> None:
    """A database at version 1 gets later migrations, each once, recorded in order."""
    url = db_url
    async with sqlstore.Store(url) as store:
        base = await store.schema_version()
        added = {
            base + 1: ("add a table", (f"CREATE TABLE {table} (x INTEGER)",)),
            base + 2: ("fill it", (f"INSERT INTO {table} VALUES (42)",)),
        }
        monkeypatch.setattr(migrations, "MIGRATIONS", {**migrations.MIGRATIONS, **added})
        monkeypatch.setattr("sqlstore.store.MIGRATIONS", migrations.MIGRATIONS)
        monkeypatch.setattr("sqlstore.store.SCHEMA_VERSION", base + 2)
        assert await migrate(store.client) == base + 2
        assert await migrate(store.client) == base + 2
        assert (await store.execute(f"SELECT count(*), max(x) FROM {table}")).rows[0] == (1, 42)
        names = await store.execute(
            "SELECT name FROM schema_migrations WHERE version > ? ORDER BY version", (base,)
        )
        assert [r[0] for r in names.rows] == ["add a table", "fill it"]
        # Leave the shared remote database at the version the other tests expect.
        await store.batch(
            [
                ("DELETE FROM schema_migrations WHERE version > ?", (base,)),
                f"DROP TABLE {table}",
            ]
        )


async def test_newer_database_is_refused(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with sqlstore.Store(db_url) as store:
        monkeypatch.setattr("sqlstore.store.SCHEMA_VERSION", 0)
        with pytest.raises(sqlstore.SqlStoreError, match="newer"):
            await migrate(store.client)


def test_split_statements_handles_triggers_and_comments() -> None:
    script = """
    -- a comment
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 'y;z';
    END;
    """
    parts = split_statements(script)
    assert len(parts) == 2 and parts[1].endswith("END")
    with pytest.raises(ValueError):
        split_statements("CREATE TABLE b (x")


@pytest.mark.parametrize(
    "foreign",
    [
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)",  # an application's own
        "CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)",  # another tool's (Rails)
        "CREATE TABLE threads (id TEXT PRIMARY KEY, user_id TEXT NOT NULL)",
        "CREATE TABLE app (x INTEGER); CREATE INDEX teams_user ON app (x)",
    ],
)
async def test_initialize_never_adopts_a_table_it_did_not_create(
    own_db_url: str, foreign: str
) -> None:
    """A database that already holds a table (or index) of a name sqlstore uses is refused
    with a ConfigurationError naming it, and nothing is changed; the application's data
    stays as it was."""
    client = await sqlstore.connect(own_db_url)
    try:
        await client.batch(foreign.split("; "))
        name = foreign.split("; ")[-1].split()[2]
        if "messages" in foreign:
            await client.execute("INSERT INTO messages (body) VALUES ('mine')")

        async def schema() -> list[tuple[Any, ...]]:
            rows = await client.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            )
            return [tuple(r) for r in rows.rows]

        before = await schema()
        for _ in range(2):
            store = sqlstore.Store(own_db_url)
            with pytest.raises(sqlstore.ConfigurationError, match=repr(name)):
                await store.initialize()
            await store.close()
        assert await schema() == before
        if "messages" in foreign:
            rows = await client.execute("SELECT id, body FROM messages")
            assert [tuple(r) for r in rows.rows] == [(1, "mine")]
    finally:
        await client.close()


def test_migrations_touch_only_tables_sqlstore_owns() -> None:
    """Every table or index a numbered migration names is one schema.sql creates, and every
    index it creates is in schema.sql too (a fresh database ends at the same shape)."""
    owned = set(migrations.owned_names())
    for version, (_, statements) in migrations.MIGRATIONS.items():
        for sql in statements:
            named = re.findall(
                r"\b(?:ON|INTO|TABLE|UPDATE|FROM|EXISTS|INDEX)\s+(\w+)", sql, re.IGNORECASE
            )
            assert named and set(named) <= owned | {"IF", "NOT"}, (version, sql, named)
