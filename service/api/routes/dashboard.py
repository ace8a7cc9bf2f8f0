"""The operations dashboard: HTML pages for people, read-only, behind a signed-in session.

The key middleware lets ``/dashboard/*`` through (``access.is_dashboard``): a browser
cannot send ``X-API-Key`` with a page load, so these routes check the session cookie
that the sign-in form sets (:mod:`service.dashboard.sessions`) whenever client keys are
configured. The cookie opens these pages and nothing else; no route here changes
anything. The routes are left out of the API document: they answer HTML, not the API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from segmentation.artifact import VERSION_NAME_MAX_LENGTH, VERSION_NAME_PATTERN
from service.api.deps import HolderDep, RecordsDep, SettingsDep, ShadowDep, WindowDep
from service.api.error_handlers import error_body
from service.api.middleware.access import DASHBOARD_PREFIX, FAILED_KEYS_PER_MINUTE
from service.api.middleware.asgi import client_address
from service.api.middleware.rate_limit import RequestBudget
from service.api.responses import JSONBytesResponse
from service.api.routes.model import training_report_response
from service.config import Settings
from service.dashboard import pages
from service.dashboard.pages import Viewer
from service.dashboard.rendering import prepare, static_file
from service.dashboard.sessions import SESSION_COOKIE, SESSION_SECONDS, DashboardKeys
from service.models.model_holder import ModelHolder
from service.models.training_report import training_report

logger = logging.getLogger(__name__)


@asynccontextmanager
async def _prepared(app: Any) -> AsyncIterator[None]:
    """Run within the app's lifespan (FastAPI merges a router's into it)."""
    await asyncio.to_thread(prepare)
    yield


router = APIRouter(
    prefix=DASHBOARD_PREFIX, tags=["dashboard"], include_in_schema=False, lifespan=_prepared
)

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only the page's own script, style sheet and icon; no inline script or style at all."""
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATIC_MAX_AGE: Final = 300
"""Seconds a browser keeps the style sheet and script before asking again (by ETag)."""

VersionName = Annotated[str, Path(max_length=VERSION_NAME_MAX_LENGTH, pattern=VERSION_NAME_PATTERN)]


@dataclass(frozen=True)
class DashboardGate:
    """Who may sign in, and how many wrong keys an address has sent (as the API counts
    them: guessing keys through the form is no faster than through ``X-API-Key``)."""

    keys: DashboardKeys
    failures: RequestBudget

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardGate:
        clients = {name: key.get_secret_value() for name, key in settings.api_keys.items()}
        admin = settings.admin_api_key
        return cls(
            keys=DashboardKeys(clients, admin.get_secret_value() if admin else None),
            failures=RequestBudget(FAILED_KEYS_PER_MINUTE),
        )


def _gate(request: Request) -> DashboardGate:
    # Built from the app's settings on first use and kept with the app: one per worker,
    # each deriving the same signing secret from the same keys.
    gate: DashboardGate | None = getattr(request.app.state, "dashboard_gate", None)
    if gate is None:
        gate = request.app.state.dashboard_gate = DashboardGate.from_settings(
            request.app.state.settings
        )
    return gate


def _base(request: Request) -> str:
    """The dashboard's own address, under whatever path a proxy mounted the service."""
    return str(request.scope.get("root_path", "")) + DASHBOARD_PREFIX


def _viewer(request: Request) -> Viewer | None:
    """Who is looking, or None when a session is needed and the request carries none."""
    keys = _gate(request).keys
    if not keys.required:
        return Viewer(client=None, sessions=False, base=_base(request))
    session = keys.check(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    request.state.client_name = session.client  # the access log names who looked
    return Viewer(client=session.client, sessions=True, base=_base(request))


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _to_sign_in(request: Request) -> RedirectResponse:
    return RedirectResponse(
        f"{_base(request)}/sign-in", status_code=303, headers={"Cache-Control": "no-store"}
    )


def _signed_out() -> JSONBytesResponse:
    """What a page's script gets for its live figures once the session has ended."""
    body = error_body("unauthorized", "the dashboard session has ended: sign in again")
    return JSONBytesResponse(body, status_code=401, headers={"Cache-Control": "no-store"})


def _no_model(holder: ModelHolder, viewer: Viewer) -> HTMLResponse:
    message = f"No model is being served: {holder.failure}."
    return _page(pages.notice_page("No model yet", message, viewer), status_code=503)


@router.get("", response_class=HTMLResponse)
async def read_dashboard(
    request: Request,
    holder: HolderDep,
    records: RecordsDep,
    window: WindowDep,
    shadow: ShadowDep,
) -> Response:
    """The active model, drift, and a card per segment."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    serving = holder.serving
    if serving is None:
        return _no_model(holder, viewer)
    html = await run_in_threadpool(
        pages.overview_page,
        serving.model,
        records,
        window,
        models_dir=holder.models_dir,
        shadow_version=shadow.version,
        viewer=viewer,
    )
    return _page(html)


@router.get("/live")
async def read_dashboard_live(
    request: Request,
    holder: HolderDep,
    records: RecordsDep,
    window: WindowDep,
    shadow: ShadowDep,
) -> Response:
    """The overview's live panels, rendered again, for the page's script."""
    viewer = _viewer(request)
    if viewer is None:
        return _signed_out()
    live = await run_in_threadpool(
        pages.overview_live,
        holder.current().model,
        records,
        window,
        models_dir=holder.models_dir,
        shadow_version=shadow.version,
        viewer=viewer,
    )
    return JSONBytesResponse(live, headers={"Cache-Control": "no-store"})


@router.get("/models", response_class=HTMLResponse)
async def read_dashboard_models(
    request: Request,
    holder: HolderDep,
    records: RecordsDep,
    shadow: ShadowDep,
    settings: SettingsDep,
) -> Response:
    """Every version with its status and history; each candidate against the active one."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    serving = holder.serving
    if serving is None:
        return _no_model(holder, viewer)
    html = await run_in_threadpool(
        pages.models_page,
        serving.model,
        records,
        shadow,
        models_dir=holder.models_dir,
        signing_keys=settings.signing_keys,
        viewer=viewer,
    )
    return _page(html)


@router.get("/models/live")
async def read_dashboard_models_live(
    request: Request, holder: HolderDep, shadow: ShadowDep
) -> Response:
    """The models page's live panel (the shadow's tally), rendered again."""
    viewer = _viewer(request)
    if viewer is None:
        return _signed_out()
    live = await run_in_threadpool(
        pages.shadow_live,
        holder.current().model,
        shadow,
        models_dir=holder.models_dir,
        viewer=viewer,
    )
    return JSONBytesResponse(live, headers={"Cache-Control": "no-store"})


@router.get("/models/{version}/report", response_class=HTMLResponse)
async def read_dashboard_report(
    request: Request, version: VersionName, holder: HolderDep, settings: SettingsDep
) -> Response:
    """A version's training report, as ``GET /models/{version}/report`` answers it."""
    if _viewer(request) is None:
        return _to_sign_in(request)
    content = await run_in_threadpool(
        training_report, holder.models_dir, version, signing_keys=settings.signing_keys
    )
    return training_report_response(content)


@router.get("/sign-in", response_class=HTMLResponse)
async def read_sign_in(request: Request) -> Response:
    """The sign-in form (straight to the dashboard when it needs no key)."""
    if not _gate(request).keys.required:
        return RedirectResponse(_base(request), status_code=303)
    return _page(pages.sign_in_page(base=_base(request), problem=None, plain_http=_plain(request)))


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, key: Annotated[str, Form()] = "") -> Response:
    """Check the key; a good one gets a session cookie and goes to the dashboard."""
    gate = _gate(request)
    if not gate.keys.required:
        return RedirectResponse(_base(request), status_code=303)
    address = client_address(request.scope)
    wait = gate.failures.wait(address)
    if wait > 0:
        retry = str(int(wait) + 1)
        problem = f"Too many wrong keys from this address: try again in {retry} seconds."
        return _sign_in_refused(request, problem, 429, {"Retry-After": retry})
    given = key.strip()
    client = gate.keys.client_of(given) if given else None
    if client is None:
        gate.failures.admit(address)
        if not given:
            return _sign_in_refused(request, "Enter your API key.", 401)
        return _sign_in_refused(request, "That key is not valid.", 403)
    logger.info("dashboard: %s signed in", client)
    cookie, _ = gate.keys.issue(client)
    response = RedirectResponse(
        _base(request), status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        path=_base(request),
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


def _sign_in_refused(
    request: Request, problem: str, status_code: int, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """The sign-in form again, saying what was wrong."""
    page = pages.sign_in_page(base=_base(request), problem=problem, plain_http=_plain(request))
    response = _page(page, status_code=status_code)
    response.headers.update(headers or {})
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session in this browser."""
    response = _to_sign_in(request)
    response.delete_cookie(
        SESSION_COOKIE, path=_base(request), secure=True, httponly=True, samesite="strict"
    )
    return response


@router.get("/static/{name}")
async def read_static(name: str, request: Request) -> Response:
    """The style sheet, script and icon, from the package; no session needed (no data)."""
    found = static_file(name)
    if found is None:
        raise HTTPException(status_code=404)
    headers = {
        "ETag": found.etag,
        "Cache-Control": f"public, max-age={STATIC_MAX_AGE}",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.content, media_type=found.media_type, headers=headers)


_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def _plain(request: Request) -> bool:
    """Whether the browser reached us over plain HTTP on another host than its own, where
    it will not keep a ``Secure`` cookie (it does keep one for localhost)."""
    if request.url.scheme != "http":
        return False
    host = request.url.hostname or ""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
