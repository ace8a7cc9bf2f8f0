"""The API's documentation, usable on a closed network and with keys.

Swagger UI's assets are served from the ``swagger-ui-bundle`` package instead of a public
CDN (on the bank's network the CDN page was blank). ``/docs``, its assets and
``/openapi.json`` need no key: they describe the API and hold no customer data, and a
browser cannot send ``X-API-Key`` with a page load. The document declares the key as an
API-key security scheme, so Swagger UI shows an Authorize button (the key entered there
goes with every "Try it out" call) and generated clients know to send it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from service.api.middleware.access import API_KEY_HEADER_NAME
from service.api.middleware.asgi import ASSETS_PATH, DOCS_PATH, OPEN_PATHS, OPENAPI_PATH

SCHEME = "ApiKey"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI from the package at ``/docs`` and declare the key in the document.

    The app must be created with ``docs_url=None`` and ``redoc_url=None`` (ReDoc loads its
    script from a CDN too, and is not served).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    app.add_api_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_key_scheme(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_key_scheme(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with ``X-API-Key`` declared for every operation but the open probes."""
    document.setdefault("components", {})["securitySchemes"] = {
        SCHEME: {
            "type": "apiKey",
            "in": "header",
            "name": API_KEY_HEADER_NAME,
            "description": "A client key from API_KEYS (ADMIN_API_KEY for /admin/*). Needed "
            "only when the service has keys configured.",
        }
    }
    document["security"] = [{SCHEME: []}]
    for path in OPEN_PATHS:
        for operation in document["paths"].get(path, {}).values():
            operation["security"] = []
    return document
