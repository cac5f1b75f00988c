"""Routes of the web dashboard: the page at `/` and its assets under `/ui/`. Neither is part
of the REST contract, so both stay out of the OpenAPI schema."""

from __future__ import annotations

import html
import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from service.core.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page is plain files: a strict policy keeps any injected markup inert.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; frame-src blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _prices(request: Request) -> dict[str, float]:
    """The operator's query prices (USD per million tokens), for the playground's cost column;
    an app without its runtime yet (still starting) has none."""
    runtime = getattr(request.app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    if settings is None:
        return {}
    return {
        "input_per_mtok": settings.price_input_per_mtok,
        "cached_input_per_mtok": settings.price_cached_input_per_mtok,
        "output_per_mtok": settings.price_output_per_mtok,
    }


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    page = (WEB_DIR / "templates" / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{ prices }}", html.escape(json.dumps(_prices(request)), quote=True))
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/ui/{name:path}")
def asset(name: str) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file() or STATIC_DIR.resolve() not in path.parents:
        raise NotFound(f"no dashboard file {name}")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})
