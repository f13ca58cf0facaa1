"""Private HTTP routes mounted before Reflex's own: attachments, served only to those allowed to see them,
and the handoff that sets or clears the HttpOnly session cookie."""

from __future__ import annotations

import asyncio
from typing import Callable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from chiiki import settings as settings_module
from chiiki.services import accounts, attachments, circulars, notices
from chiiki.services.errors import ServiceError
from chiiki.state import HANDOFF_COOKIE, HANDOFF_PATH, SESSION_COOKIE, trusted_origin

ATTACHMENT_PATH = "/files/circular"
NOTICE_ATTACHMENT_PATH = "/files/notice"
# Never let a browser guess another type, cache a private file, or send where it came from.
PRIVATE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}

# (actor, raw id) -> (AttachmentInfo, storage key) when the actor may download it; ServiceError otherwise.
Finder = Callable[..., tuple[attachments.AttachmentInfo, str]]


def _not_found() -> Response:
    """The one answer for a missing file, a foreign one, or no session: nothing leaks."""
    return PlainTextResponse("Not Found", status_code=404, headers=PRIVATE_HEADERS)


def _lookup(find: Finder, token: str, raw_id: str):
    actor = accounts.actor_for_token(token)
    if not actor.authenticated:
        return None
    try:
        found, key = find(actor, raw_id)
    except ServiceError:
        return None
    path = attachments.file_path(key)
    return (found, path) if path is not None else None


def _file_route(find: Finder):
    """A GET/HEAD endpoint serving the attachment `find` allows for the session's actor, else the same 404."""

    async def endpoint(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        raw_id = request.path_params.get("attachment_id", "")
        if not token or not (raw_id.isascii() and raw_id.isdigit()):
            return _not_found()
        hit = await asyncio.to_thread(_lookup, find, token, raw_id)
        if hit is None:
            return _not_found()
        found, path = hit
        # PDFs and images open in the browser's own viewer; the sniffed type is never text/html or SVG.
        return FileResponse(path, media_type=found.content_type, filename=found.filename,
                            content_disposition_type="inline", headers=PRIVATE_HEADERS)

    return endpoint


circular_attachment = _file_route(circulars.attachment_for)
notice_attachment = _file_route(notices.attachment_for)


def attachment_url(attachment_id: int) -> str:
    return f"{ATTACHMENT_PATH}/{attachment_id}"


def notice_attachment_url(attachment_id: int) -> str:
    return f"{NOTICE_ATTACHMENT_PATH}/{attachment_id}"


def _site_origin(url: str, request: Request) -> str:
    """The origin of `url` when it is a page of this site (in development on another port), else ""."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    ok = parts.scheme in ("http", "https") and parts.netloc and trusted_origin(origin, request.headers.get("host", ""))
    return origin if ok else ""


def _landing(origin: str, next_path: str, request: Request) -> str:
    """Where a handoff sends the browser: `next_path` on the page's origin when that origin is this site's,
    else on this host. Never another site."""
    return _site_origin(origin, request) + next_path


async def session_handoff(request: Request) -> Response:
    """Redeem a one-time ticket (AuthState._hand_off): set the HttpOnly session cookie (or clear it) and
    send the browser on. The ticket only works with the nonce cookie the app's page set just before, so
    a link elsewhere cannot log a browser into someone's account or out of its own; a navigation from
    another site is refused outright."""
    # The app's own page navigates here: same-origin, or in development same-site from the frontend port
    # (then the Referer must be this site's page). Not a typed address, a link in a mail, or another site.
    site = request.headers.get("sec-fetch-site")
    if site not in (None, "same-origin") and not (
            site == "same-site" and _site_origin(request.headers.get("referer", ""), request)):
        return _not_found()
    found = await asyncio.to_thread(accounts.redeem_handoff, request.query_params.get("t", ""),
                                    request.cookies.get(HANDOFF_COOKIE, ""))
    target = (_landing(found.origin, found.next_path, request) if found is not None
              else _landing(request.headers.get("referer", ""), "/", request))  # used, expired or made up
    response = RedirectResponse(target, status_code=303, headers=PRIVATE_HEADERS)
    response.delete_cookie(HANDOFF_COOKIE, path=HANDOFF_PATH, samesite="strict")
    if found is None:
        return response
    secure = found.origin.startswith("https:") or request.url.scheme == "https"
    if found.token:
        response.set_cookie(SESSION_COOKIE, found.token, max_age=settings_module.settings.session_hours * 3600,
                            path="/", secure=secure, httponly=True, samesite="strict")
    else:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    return response


api = Starlette(routes=[
    Route(HANDOFF_PATH, session_handoff, methods=["GET"]),
    Route(ATTACHMENT_PATH + "/{attachment_id}", circular_attachment, methods=["GET", "HEAD"]),
    Route(NOTICE_ATTACHMENT_PATH + "/{attachment_id}", notice_attachment, methods=["GET", "HEAD"]),
])
