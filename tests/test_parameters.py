"""Parameters bind alike on every backend: named (``:a``, ``@a``, ``$a``), numbered (``?N``)
and positional (``?``), in ``execute`` and in ``batch``; bad arguments are a ValidationError
raised before anything is sent or written."""

from __future__ import annotations

from typing import Any

import pytest

from sqlstore.drivers import Client
from sqlstore.errors import ValidationError


async def one_row(client: Client, sql: str, args: Any) -> tuple[Any, ...]:
    """The first row of ``sql`` run alone and run inside a batch (both must agree)."""
    alone = (await client.execute(sql, args)).rows[0]
    in_batch = (await client.batch([(sql, args)]))[0].rows[0]
    assert tuple(alone) == tuple(in_batch)
    return tuple(alone)


@pytest.mark.parametrize("prefix", [":", "@", "$"])
async def test_named_parameters_each_prefix(client: Client, prefix: str) -> None:
    sql = f"SELECT {prefix}first, {prefix}second || 'x', {prefix}first * 2"
    assert await one_row(client, sql, {"second": "y", "first": 21}) == (21, "yx", 42)
    # Keys may carry the prefix too.
    assert await one_row(client, sql, {f"{prefix}first": 1, "second": ""}) == (1, "x", 2)


async def test_a_name_used_twice_binds_one_value(client: Client) -> None:
    row = await one_row(client, "SELECT :a, :b, :a + :b, :a", {"a": 5, "b": 7})
    assert row == (5, 7, 12, 5)


async def test_prefixes_mixed_in_one_statement(client: Client) -> None:
    row = await one_row(client, "SELECT :x, @y, $z, :x || @y || $z", {"x": "1", "y": "2", "z": "3"})
    assert row == ("1", "2", "3", "123")


async def test_numbered_parameters_out_of_order_and_reused(client: Client) -> None:
    row = await one_row(client, "SELECT ?2, ?1, ?2 || ?1, ?3", ("a", "b", None))
    assert row == ("b", "a", "ba", None)


async def test_positional_parameters(client: Client) -> None:
    assert await one_row(client, "SELECT ?, ?, ? + ?", (1, "two", 3, 4)) == (1, "two", 7)
    assert await one_row(client, "SELECT ?, ?", [None, b"\x00"]) == (None, b"\x00")


PARAMETER_LOOKALIKES = [
    # (sql, named args, expected row)
    ("SELECT ':x', :a", {"a": 1}, (":x", 1)),
    ("SELECT '@y ?', '$z', :a", {"a": 2}, ("@y ?", "$z", 2)),
    ("SELECT 'it''s :x', :a", {"a": 3}, ("it's :x", 3)),
    ('SELECT :a AS ":x"', {"a": 4}, (4,)),
    ("SELECT :a AS [@y]", {"a": 5}, (5,)),
    ("SELECT :a AS `$z`", {"a": 6}, (6,)),
    ("SELECT :a -- :y ?\n, 7", {"a": 7}, (7, 7)),
    ("SELECT /* @z ? :y */ :a", {"a": 8}, (8,)),
]


@pytest.mark.parametrize(("sql", "args", "expected"), PARAMETER_LOOKALIKES)
async def test_parameter_lookalikes_in_literals_identifiers_and_comments(
    client: Client, sql: str, args: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert await one_row(client, sql, args) == expected


async def test_positional_lookalikes_are_left_alone(client: Client) -> None:
    row = await one_row(client, "SELECT '?', ? /* ? */, ':a' -- ?\n", (1,))
    assert row == ("?", 1, ":a")


async def test_named_and_numbered_results_keep_their_column_names(client: Client) -> None:
    named = await client.execute("SELECT :value AS v, :value + 1 AS w", {"value": 1})
    assert named.columns == ("v", "w") and tuple(named.rows[0]) == (1, 2)
    numbered = await client.execute("SELECT ?2 AS second, ?1 AS first", ("a", "b"))
    assert numbered.columns == ("second", "first") and tuple(numbered.rows[0]) == ("b", "a")


async def test_named_parameters_in_writes_and_batches(client: Client, table: str) -> None:
    await client.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, a, b)")
    await client.batch(
        [
            (f"INSERT INTO {table} VALUES (:id, :a, :b)", {"id": 1, "a": "x", "b": "y"}),
            (f"INSERT INTO {table} VALUES (@id, @b, @a)", {"a": "x", "b": "y", "id": 2}),
            (f"INSERT INTO {table} VALUES (?3, ?1, ?2)", ("p", "q", 3)),
            (f"INSERT INTO {table} VALUES (?, ?, ?)", (4, "m", "n")),
            (f"UPDATE {table} SET b = :b || b WHERE id = :id", {"id": 1, "b": "z"}),
        ]
    )
    rows = await client.execute(f"SELECT id, a, b FROM {table} ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "x", "zy"),
        (2, "y", "x"),
        (3, "p", "q"),
        (4, "m", "n"),
    ]


BAD_ARGUMENTS = [
    # (sql, args, words the message must contain)
    ("SELECT :a, :b", {"a": 1}, "b"),  # a missing name
    ("SELECT :a", {"a": 1, "zzz": 2}, "zzz"),  # an unused name
    ("SELECT 1", {"zzz": 2}, "zzz"),  # names for a statement without parameters
    ("SELECT :a, ?", {"a": 1}, "mix"),  # '?' mixed with a name
    ("SELECT :a, ?", (1, 2), "mix"),  # the same, given by position
    ("SELECT ?2, :a", (1, 2), "mix"),
    ("SELECT :a, :b", (1, 2), "named"),  # named parameters given by position
    ("SELECT ?", {"a": 1}, "position"),  # positional parameters given by name
    ("SELECT ?1", {"1": 1}, "position"),
    ("SELECT ?, ?", (1,), "2"),  # too few values
    ("SELECT ?", (1, 2), "1"),  # too many values
    ("SELECT ?2", ("a",), "2"),  # ?2 needs two values
    ("SELECT 1", (1,), "0"),
]


@pytest.mark.parametrize(("sql", "args", "words"), BAD_ARGUMENTS)
async def test_bad_arguments_are_a_validation_error_before_any_write(
    client: Client, table: str, sql: str, args: Any, words: str
) -> None:
    await client.execute(f"CREATE TABLE {table} (x)")
    with pytest.raises(ValidationError) as info:
        await client.execute(sql, args)
    assert words in str(info.value)
    with pytest.raises(ValidationError):
        await client.batch([(f"INSERT INTO {table} VALUES (1)", ()), (sql, args)])
    with pytest.raises(ValidationError):
        await client.batch([(sql, args), (f"INSERT INTO {table} VALUES (2)", ())])
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 0
