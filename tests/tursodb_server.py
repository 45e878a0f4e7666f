"""Start and stop a real tursodb server (Hrana over HTTP) for the tests and benchmarks."""

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


def find_tursodb() -> str:
    """Path of the tursodb binary: $SQLSTORE_TURSODB, the project's .tools, or PATH."""
    explicit = os.environ.get("SQLSTORE_TURSODB")
    if explicit:
        return explicit
    found = sorted(glob.glob(str(ROOT / ".tools/node_modules/@tursodatabase/*/tursodb")))
    if found:
        return found[0]
    on_path = shutil.which("tursodb")
    if on_path:
        return on_path
    raise RuntimeError(
        "tursodb not found: run tests/setup.sh (it installs the pinned npm package "
        f"turso@{TURSO_VERSION} into .tools/) or set SQLSTORE_TURSODB"
    )


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TursoServer:
    """One tursodb process serving one database file on 127.0.0.1."""

    def __init__(self, db_path: Path, port: int | None = None) -> None:
        self.db_path = db_path
        self.port = port or free_port()
        self.binary = find_tursodb()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = db_path.with_suffix(".log")

    @property
    def url(self) -> str:
        """The server's base URL for sqlstore."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 20.0) -> None:
        """Start the server and wait until it answers a pipeline request."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [self.binary, str(self.db_path), "--sync-server", f"127.0.0.1:{self.port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + wait
        body = b'{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}}]}'
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tursodb exited early: {self.log_path.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(f"{self.url}/v2/pipeline", data=body, method="POST")
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tursodb did not answer on {self.url} within {wait} s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: a crash, not a graceful shutdown) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port and file."""
        self.stop()
        self.start()
