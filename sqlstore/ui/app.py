"""The web UI: a Starlette app over one Store, server-rendered with Jinja2, no scripts.

Safety: every state change is a POST carrying the process's CSRF token and, where the
browser sends them, an Origin of this server and a same-origin ``Sec-Fetch-Site``; the
Host header must name the address served (no DNS rebinding); every value goes through
Jinja2's autoescaping and a Content-Security-Policy without scripts; errors render a page
with a short message, never a traceback, a URL's query or a token.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import NotFoundError, SqlStoreError, ValidationError
from ..store import Store
from . import pages
from .render import pretty, size, time_left, when
from .web import Settings, render

HERE = Path(__file__).parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    # Not "no-referrer": under it a browser sends "Origin: null" with the page's own forms,
    # which the cross-site check must refuse.
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def public_url(url: Any) -> str:
    """The database URL as the page may show it: no user info, query or fragment (where a
    token could hide); a client object by its type name."""
    if not isinstance(url, str):
        return type(url).__name__
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or not parts.netloc:
        return url.split("?", 1)[0]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class SecurityHeaders:
    """ASGI middleware adding the CSP and friends to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def environment() -> Environment:
    """The Jinja2 environment: the package's templates, autoescaping on, the filters."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )
    env.filters.update(when=when, time_left=time_left, size=size, pretty=pretty)
    return env


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error (404, 403, 405...) as a page."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "error"
    return render(request, "error.html", status, title=f"Error {status}", message=detail)


async def store_error(request: Request, exc: Exception) -> Response:
    """A sqlstore error as a page: bad input 400, missing 404, the rest 502."""
    if isinstance(exc, ValidationError):
        status = 400
    elif isinstance(exc, NotFoundError):
        status = 404
    else:
        status = 502
    message = f"{type(exc).__name__}: {exc}"
    return render(request, "error.html", status, title=f"Error {status}", message=message)


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything else: a page saying so (Starlette re-raises it for the server's log)."""
    return render(
        request, "error.html", 500, title="Error 500", message="Internal error (see the server log)"
    )


def create_app(
    store: Store,
    *,
    database_url: Any,
    read_only: bool = False,
    hosts: tuple[str, ...] = LOOPBACK_HOSTS,
    owns_store: bool = True,
) -> Starlette:
    """The UI app over ``store`` (initialized on startup, closed on shutdown when
    ``owns_store``), which was opened on ``database_url`` (shown without its query or user
    info). ``hosts`` are the Host header names accepted ("*" for any)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.initialize()
        try:
            yield
        finally:
            if owns_store:
                await store.close()

    app = Starlette(
        routes=[
            *[Route(path, endpoint, methods=methods) for path, endpoint, methods in pages.ROUTES],
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
        ],
        exception_handlers={
            HTTPException: http_error,
            SqlStoreError: store_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.env = environment()
    app.state.settings = Settings(
        url=public_url(database_url),
        read_only=read_only,
        csrf_token=secrets.token_urlsafe(32),
    )
    return app
