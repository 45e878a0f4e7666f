"""Fixtures: every database test runs on a local SQLite file and on two real libSQL servers
(tursodb and sqld), each named in the test id: ``[local]``, ``[tursodb]``, ``[sqld]``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import sqlstore
from sqlstore.drivers import Client
from tests.servers import ServerProcess, SqldServer, TursoServer

BACKENDS = ("local", "tursodb", "sqld")
REMOTE_BACKENDS = ("tursodb", "sqld")


@pytest.fixture(scope="session")
def tursodb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TursoServer]:
    """One real tursodb server for the whole session, on a free loopback port."""
    server = TursoServer(tmp_path_factory.mktemp("tursodb") / "session.db")
    server.start()  # a missing binary or a dead server fails the tests, never skips them
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqld_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqldServer]:
    """One real sqld server for the whole session, on a free loopback port."""
    server = SqldServer(tmp_path_factory.mktemp("sqld") / "session.sqld")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[TursoServer]:
    """A tursodb server of this test's own (for tests that kill and restart it)."""
    server = TursoServer(tmp_path / "own.db")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_sqld(tmp_path: Path) -> Iterator[SqldServer]:
    """A sqld server of this test's own (for tests that kill and restart it)."""
    server = SqldServer(tmp_path / "own.sqld")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=REMOTE_BACKENDS)
def remote_server(request: pytest.FixtureRequest) -> ServerProcess:
    """Each real server of the session: tursodb, then sqld."""
    server: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    return server


def _fresh(request: pytest.FixtureRequest, backend: str) -> ServerProcess:
    """A server of this test's own of the named kind (tursodb or sqld)."""
    server: ServerProcess = request.getfixturevalue(
        "fresh_server" if backend == "tursodb" else "fresh_sqld"
    )
    return server


@pytest.fixture(params=REMOTE_BACKENDS)
def fresh_remote(request: pytest.FixtureRequest) -> ServerProcess:
    """A server of this test's own, of each kind (for tests that kill and restart it)."""
    return _fresh(request, request.param)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database on each backend: a fresh local file, or a session server."""
    if request.param == "local":
        return f"file:{tmp_path / 'test.db'}"
    server: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    return server.url


@pytest.fixture(params=BACKENDS)
def own_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of this test's own on each backend: a local file or a fresh server."""
    if request.param == "local":
        return f"file:{tmp_path / 'own.db'}"
    return _fresh(request, request.param).url


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[Client]:
    """A low-level client on each backend."""
    c = await sqlstore.connect(db_url)
    yield c
    await c.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[sqlstore.Store]:
    """An initialized Store on each backend."""
    async with sqlstore.Store(db_url) as s:
        yield s


@pytest.fixture
def table() -> str:
    """A table name unique to this test (the remote database is shared by the session)."""
    return f"t_{uuid.uuid4().hex[:12]}"


def unique(prefix: str = "id") -> str:
    """A value unique to this call, for ids on the shared remote database."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests ran on each backend, so a run shows the remote tests ran."""
    counts: dict[str, dict[str, int]] = {b: {} for b in BACKENDS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            for backend in BACKENDS:
                if f"[{backend}" in nodeid or f"-{backend}]" in nodeid or f"-{backend}-" in nodeid:
                    counts[backend][outcome] = counts[backend].get(outcome, 0) + 1
    parts = [
        f"{backend}: " + (", ".join(f"{n} {o}" for o, n in sorted(c.items())) or "none")
        for backend, c in counts.items()
    ]
    terminalreporter.write_line("backends: " + "; ".join(parts))


@pytest.fixture
def turso_server(tursodb_server: TursoServer) -> TursoServer:
    """The session's tursodb server (the older name of ``tursodb_server``)."""
    return tursodb_server
