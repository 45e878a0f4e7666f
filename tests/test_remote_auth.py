"""Real authentication on sqld: Ed25519-signed Turso-style tokens (EdDSA JWT, claims
``{"a": "rw" | "ro", "exp": ...}``), checked by ``sqld --auth-jwt-key-file``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

import sqlstore
from sqlstore.compat.agentomatic import LibSQLStore
from sqlstore.compat.langgraph import LibSQLSaver
from sqlstore.domains.team_models import Session, Team
from sqlstore.drivers.remote import RemoteClient
from sqlstore.errors import AuthenticationError
from tests.servers import SqldServer
from tests.test_teams import team_config
from tests.tokens import KeyPair


class AuthServer:
    """A sqld of the test's own that checks tokens signed by ``keys``."""

    def __init__(self, tmp_path: Path) -> None:
        self.keys = KeyPair()
        self.rw = self.keys.token("rw")
        self.ro = self.keys.token("ro")
        self.server = SqldServer(
            tmp_path / "auth.sqld", jwt_key=self.keys.public_pem, probe_token=self.rw
        )
        self.url = self.server.url


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[AuthServer]:
    """sqld with --auth-jwt-key-file holding a public key this test made."""
    made = AuthServer(tmp_path)
    made.server.start()
    yield made
    made.server.stop()


async def row_count(auth: AuthServer) -> int:
    """Rows in every sqlstore table (read with the read-write token)."""
    async with sqlstore.Store(auth.url, auth_token=auth.rw) as store:
        tables = await store.client.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        total = 0
        for name in (str(row[0]) for row in tables.values):
            total += int(
                (await store.client.execute(f'SELECT count(*) FROM "{name}"')).scalar() or 0
            )
        return total


@pytest.mark.parametrize("token", ["other key", "expired", "missing"])
async def test_bad_tokens_are_refused_before_anything_is_written(
    auth: AuthServer, token: str
) -> None:
    async with sqlstore.Store(auth.url, auth_token=auth.rw) as store:
        await store.threads.create("u", thread_id="t0")
    before = await row_count(auth)
    bad = {
        "other key": KeyPair().token("rw"),
        "expired": auth.keys.token("rw", expires_in=-600),  # past sqld's leeway
        "missing": None,
    }[token]
    for sql in ("SELECT 1", "INSERT INTO threads (id, user_id) VALUES ('x', 'u')"):
        client = await sqlstore.connect(auth.url, auth_token=bad)
        assert isinstance(client, RemoteClient)
        with pytest.raises(AuthenticationError, match="HTTP 401"):
            await client.execute(sql)
        assert client.requests_sent == 1  # refused at once, never re-sent
        await client.close()
        other = await sqlstore.connect(auth.url, auth_token=bad)
        with pytest.raises(AuthenticationError, match="HTTP 401"):
            await other.batch([sql, sql])
        await other.close()
    with pytest.raises(AuthenticationError):
        await sqlstore.Store(auth.url, auth_token=bad).initialize()
    assert await row_count(auth) == before


async def test_good_token_works(auth: AuthServer) -> None:
    async with sqlstore.Store(f"{auth.url}?authToken={auth.rw}") as store:
        thread = await store.threads.create("u")
        await store.threads.add_message(thread.id, "user", "hi")
        assert [m.content for m in await store.threads.messages(thread.id)] == ["hi"]
        assert (await store.health_check())["ok"] is True


async def test_read_only_token_serves_every_read_and_refuses_writes(auth: AuthServer) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "lg", "checkpoint_ns": ""}}
    async with sqlstore.Store(auth.url, auth_token=auth.rw) as store:
        await store.threads.create("u", thread_id="t1", title="one")
        await store.threads.add_message("t1", "user", "hello")
        await store.threads.fork("t1", 0, new_thread_id="t2")
        await store.conversations.save("u", "s", "a", {"role": "user", "content": [{"text": "x"}]})
        await store.feedback.add(thread_id="t1", rating=1)
        await store.approvals.save({"step": 1}, approval_id="ap1", thread_id="t1")
        team = (await store.teams.upsert(Team(user_id="u", config=team_config("ro")))).data
        await store.teams.upsert(Session(team_id=team.id, name="s1"))
        saved = await LibSQLSaver(store).aput(config, empty_checkpoint(), {}, {})
        version = await store.schema_version()
        thread = await store.threads.get("t1")
    before = await row_count(auth)

    async with sqlstore.Store(auth.url, auth_token=auth.ro) as ro:  # initialize writes nothing
        assert await ro.schema_version() == version
        assert (await ro.health_check())["ok"] is True
        assert await ro.stats() == {"threads": 4, "messages": 3, "feedback": 1, "approvals": 1}
        assert (await ro.threads.get("t1")) == thread
        assert len(await ro.threads.list(user_id="u")) == 4
        assert [m.content for m in await ro.threads.messages("t2")] == ["hello"]
        assert len(await ro.threads.recent_messages("t1")) == 1
        lineage = await ro.threads.lineage("t2")
        assert lineage is not None
        assert len(await ro.conversations.newest("u", "s", "a")) == 1
        assert len(await ro.conversations.session("u", "s")) == 1
        assert len(await ro.conversations.sessions("u")) == 1
        assert await ro.conversations.count("u", "s", "a") == 1
        assert len(await ro.feedback.list(thread_id="t1")) == 1
        assert len(await ro.approvals.list(thread_id="t1")) == 1
        assert (await ro.approvals.get("ap1")) is not None
        assert len((await ro.teams.get("team", {"user_id": "u"})).data) == 1
        assert len((await ro.teams.get("session", {"team_id": team.id})).data) == 1
        saver = LibSQLSaver(ro)
        found = await saver.aget_tuple(saved)
        assert found is not None
        assert len([c async for c in saver.alist(config)]) == 1

        with pytest.raises(AuthenticationError, match="no write access"):
            await ro.threads.create("u")
        with pytest.raises(AuthenticationError, match="no write access"):
            await ro.client.execute("DELETE FROM threads")
        with pytest.raises(AuthenticationError, match="no write access"):
            await ro.conversations.save("u", "s", "a", {"role": "user", "content": []})

    agentomatic = LibSQLStore(auth.url, auth_token=auth.ro)
    await agentomatic.initialize()
    assert (await agentomatic.get_thread("t1")) is not None
    assert len(await agentomatic.get_messages("t1")) == 1
    assert (await agentomatic.health_check())["status"] in ("healthy", "ok")
    await agentomatic.close()
    assert await row_count(auth) == before
