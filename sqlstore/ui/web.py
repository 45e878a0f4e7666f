"""What every page shares: the app's store and settings, rendering, and the checks a
state-changing POST must pass (CSRF token, Origin, Sec-Fetch-Site, not read-only)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from ..errors import ValidationError
from ..store import Store


@dataclass(slots=True)
class Settings:
    """What one UI process serves and allows."""

    url: str
    read_only: bool
    csrf_token: str


def store_of(request: Request) -> Store:
    """The app's Store."""
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    """The app's Settings."""
    settings: Settings = request.app.state.settings
    return settings


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``template`` with the shared context (settings, the request, the nav)."""
    env: Environment = request.app.state.env
    html = env.get_template(template).render(
        request=request, settings=settings_of(request), **context
    )
    return HTMLResponse(html, status_code=status)


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after the cross-site checks; a 403 when one fails."""
    settings = settings_of(request)
    if settings.read_only:
        raise HTTPException(403, "this UI runs read-only (--read-only)")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, "cross-site request refused")
    origin = request.headers.get("origin")  # "null" from an opaque origin never matches
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
        raise HTTPException(403, "cross-origin request refused")
    form = await request.form(max_files=1, max_fields=20)
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, settings.csrf_token):
        raise HTTPException(403, "the form is stale or foreign: reload the page and try again")
    return form


def form_text(form: FormData, name: str) -> str:
    """A text field of the form ('' when missing)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_file(form: FormData, name: str) -> UploadFile:
    """A file field of the form; a ValidationError when none was sent."""
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        raise ValidationError("choose a file to upload")
    return value


def redirect(url: str) -> RedirectResponse:
    """A 303 back to a page after a POST."""
    return RedirectResponse(url, status_code=303)
