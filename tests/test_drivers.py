"""The driver contract on both backends: atomic batches, values, concurrency, errors."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import sqlstore
from sqlstore.drivers import Client
from sqlstore.errors import ConfigurationError, QueryError, ValidationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


async def make_table(client: Client, table: str) -> None:
    await client.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v ANY, note TEXT)")


async def count(client: Client, table: str) -> int:
    value = (await client.execute(f"SELECT count(*) FROM {table}")).scalar()
    assert isinstance(value, int)
    return value


async def test_backend_names(client: Client, db_url: str) -> None:
    assert client.backend == ("local" if db_url.startswith("file:") else "remote")


async def test_batch_with_failing_middle_statement_leaves_nothing(
    client: Client, table: str
) -> None:
    await make_table(client, table)
    await client.execute(f"INSERT INTO {table} (id, note) VALUES (1, 'before')")
    with pytest.raises(QueryError) as info:
        await client.batch(
            [
                (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (2, "first")),
                (f"INSERT INTO no_such_table_{table} VALUES (?)", (1,)),
                (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (3, "third")),
            ]
        )
    assert "no_such_table" in str(info.value)
    rows = (await client.execute(f"SELECT id, note FROM {table} ORDER BY id")).rows
    assert [tuple(r) for r in rows] == [(1, "before")]


async def test_batch_constraint_failure_rolls_back_earlier_statements(
    client: Client, table: str
) -> None:
    await make_table(client, table)
    with pytest.raises(QueryError):
        await client.batch(
            [
                (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (1, "a")),
                (f"UPDATE {table} SET note = 'changed' WHERE id = 1", ()),
                (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (1, "duplicate")),
            ]
        )
    assert await count(client, table) == 0


async def test_batch_results_in_order(client: Client, table: str) -> None:
    await make_table(client, table)
    results = await client.batch(
        [
            (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (1, "a")),
            (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (2, "b")),
            (f"INSERT INTO {table} (id, note) VALUES (?, ?) RETURNING id", (3, "c")),
            f"SELECT count(*) AS n FROM {table}",
        ]
    )
    assert len(results) == 4
    assert results[0].rows == () and results[1].rows == ()
    assert results[2].rows[0]["id"] == 3
    assert results[3].rows[0]["n"] == 3
    assert await client.batch([]) == []


VALUES: list[Any] = [
    None,
    0,
    1,
    -1,
    INT64_MAX,
    INT64_MIN,
    2**53 + 1,
    0.1,
    -2.5e-300,
    1.7976931348623157e308,
    "",
    "plain",
    "unicode: héllo wörld ☃ 日本語 🚀 \u0000 inside",
    "quote ' \" and \\ backslash",
    b"",
    b"\x00\x01\xff binary",
    bytes(range(256)),
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
async def test_value_round_trip(client: Client, table: str, value: Any) -> None:
    await make_table(client, table)
    await client.execute(f"INSERT INTO {table} (id, v) VALUES (1, ?)", (value,))
    got = (await client.execute(f"SELECT v, typeof(v) FROM {table} WHERE id = 1")).rows[0]
    assert got[0] == value
    assert type(got[0]) is type(value)
    echoed = (await client.execute("SELECT ?", (value,))).scalar()
    assert echoed == value and type(echoed) is type(value)


async def test_bool_is_stored_as_integer(client: Client) -> None:
    assert (await client.execute("SELECT ?, ?", (True, False))).rows[0] == (1, 0)


async def test_named_arguments(client: Client, table: str) -> None:
    await make_table(client, table)
    await client.execute(
        f"INSERT INTO {table} (id, v, note) VALUES (:id, :v, :note)",
        {"note": "named", "id": 7, ":v": 42},
    )
    row = (await client.execute(f"SELECT * FROM {table} WHERE id = :id", {"id": 7})).rows[0]
    assert (row["id"], row["v"], row["note"]) == (7, 42, "named")
    # A repeated name binds one value; quoted text that looks like a parameter is left alone.
    row = (
        await client.execute("SELECT :a + :a, ':b', @c || $d", {"a": 2, "c": "x", "d": "y"})
    ).rows[0]
    assert tuple(row) == (4, ":b", "xy")


async def test_row_access_by_name_and_position(client: Client) -> None:
    result = await client.execute("SELECT 1 AS one, 'two' AS two")
    assert result.columns == ("one", "two")
    row = result.rows[0]
    assert row[0] == 1 and row["one"] == 1 and row[1] == "two" and row["two"] == "two"
    assert row.asdict() == {"one": 1, "two": "two"} and row.keys() == ["one", "two"]
    assert list(row) == [1, "two"] and len(row) == 2
    with pytest.raises(KeyError):
        row["three"]


@pytest.mark.parametrize(
    ("statement", "args"),
    [
        ("SELECT ?", (object(),)),
        ("SELECT ?", ({"a": 1},)),
        ("SELECT ?", (2**63,)),
        ("SELECT ?", (-(2**63) - 1,)),
        ("SELECT ?", "not a sequence"),
        ("", ()),
        ("BEGIN", ()),
        ("  -- comment\n COMMIT", ()),
    ],
)
async def test_bad_input_is_a_validation_error(
    client: Client, table: str, statement: str, args: Any
) -> None:
    await make_table(client, table)
    with pytest.raises(ValidationError):
        await client.execute(statement, args)
    with pytest.raises(ValidationError):
        await client.batch([(f"INSERT INTO {table} (id) VALUES (1)", ()), (statement or " ", args)])
    assert await count(client, table) == 0


async def test_batch_rejects_non_statements(client: Client) -> None:
    with pytest.raises(ValidationError):
        await client.batch("SELECT 1")
    with pytest.raises(ValidationError):
        await client.batch([("SELECT 1", (), "extra")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1, "lone \ud800 surrogate", object()],
    ids=["nan", "inf", "-inf", "2**63", "-2**63-1", "surrogate", "object"],
)
async def test_a_value_no_backend_stores_alike_is_refused_before_any_io(
    client: Client, table: str, value: Any
) -> None:
    # SQLite would turn NaN into NULL and keep infinities; Hrana cannot carry either; a
    # lone surrogate cannot be UTF-8; an integer past 64 bits used to fail only after BEGIN.
    await client.execute(f"CREATE TABLE {table} (v)")
    for call in (
        client.execute(f"INSERT INTO {table} VALUES (?)", (value,)),
        client.execute(f"INSERT INTO {table} VALUES (:v)", {"v": value}),
        client.batch(
            [
                (f"INSERT INTO {table} VALUES (?)", (1,)),
                (f"INSERT INTO {table} VALUES (?)", [value]),
            ]
        ),
    ):
        with pytest.raises(ValidationError):
            await call
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 0


async def test_query_error_carries_code(client: Client) -> None:
    with pytest.raises(QueryError) as info:
        await client.execute("SELECT * FROM table_that_does_not_exist")
    assert "table_that_does_not_exist" in str(info.value)
    assert info.value.sql == "SELECT * FROM table_that_does_not_exist"


async def test_hundred_concurrent_batches(client: Client, table: str) -> None:
    await make_table(client, table)

    async def one(i: int) -> None:
        await client.batch(
            [
                (f"INSERT INTO {table} (id, note) VALUES (?, ?)", (i * 10 + k, f"b{i}"))
                for k in range(5)
            ]
        )

    await asyncio.gather(*(one(i) for i in range(100)))
    assert await count(client, table) == 500
    per_batch = await client.execute(f"SELECT note, count(*) FROM {table} GROUP BY note")
    assert len(per_batch.rows) == 100 and {r[1] for r in per_batch.rows} == {5}


async def test_concurrent_single_statements_fail_alone(client: Client, table: str) -> None:
    """Many concurrent execute() calls: a failing one does not take others down with it."""
    await make_table(client, table)
    await client.execute(f"INSERT INTO {table} (id, note) VALUES (0, 'taken')")

    async def insert(i: int) -> str:
        try:
            await client.execute(f"INSERT INTO {table} (id, note) VALUES (?, 'x')", (i % 50,))
        except QueryError:
            return "error"
        return "ok"

    outcomes = await asyncio.gather(*(insert(i) for i in range(1, 201)))
    # ids 1..49 succeed once each; id 0 and every repeat collide.
    assert outcomes.count("ok") == 49
    assert await count(client, table) == 50


async def test_closed_client_refuses_calls(db_url: str) -> None:
    client = await sqlstore.connect(db_url)
    await client.close()
    await client.close()
    with pytest.raises(sqlstore.UnavailableError):
        await client.execute("SELECT 1")


@pytest.mark.parametrize(
    "url",
    ["postgres://x/y", "sqlite:///x.db", "x.db", "", "file:", "libsql://", "ftp://host"],
)
async def test_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await sqlstore.connect(url)
    assert "file:" in str(info.value) or url in ("file:", "libsql://")
    with pytest.raises(ConfigurationError):
        sqlstore.Store(url) if url not in ("file:", "libsql://") else await sqlstore.connect(url)


async def test_unknown_option_is_a_configuration_error(db_url: str) -> None:
    with pytest.raises(ConfigurationError):
        await sqlstore.connect(db_url, no_such_option=1)


async def test_ws_url_without_extra_or_with_it_gives_a_client() -> None:
    try:
        import libsql_client  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError):
            await sqlstore.connect("ws://127.0.0.1:9")
    else:
        client = await sqlstore.connect("ws://127.0.0.1:9")
        assert client.backend == "ws"
        await client.close()
