"""The documentation on a closed network with keys on: Swagger UI from the package (no
CDN), readable without a key, and a document that declares the key so that the page's
Authorize button and generated clients send it."""

from __future__ import annotations

import re
from pathlib import Path

from service.api.middleware.asgi import OPEN_PATHS
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS


async def test_the_docs_page_and_every_asset_it_loads_are_served_here_without_a_key(
    models_dir: Path,
) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http://" not in page.text and "https://" not in page.text  # no CDN
        loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        loaded += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
        assert "/openapi.json" in loaded
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(loaded)
        for path in loaded:
            asset = await client.get(path)
            assert asset.status_code == 200, path
        # Only the documentation is open: the API itself still needs the key.
        assert (await client.get("/segments")).status_code == 401
        assert (await client.get("/docs/assets/../../segments")).status_code == 401
        assert (await client.get("/redoc")).status_code == 401  # not served (a CDN page)


async def test_the_document_declares_the_key_for_every_operation_but_the_probes(
    models_dir: Path,
) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        document = (await client.get("/openapi.json")).json()
        # What the Authorize button sends: the scheme's header, with the client's key.
        (scheme,) = document["components"]["securitySchemes"].values()
        assert scheme["type"] == "apiKey" and scheme["in"] == "header"
        tried = await client.get("/segments", headers={scheme["name"]: CRM_KEY})
    assert tried.status_code == 200
    (name,) = document["components"]["securitySchemes"]
    assert document["security"] == [{name: []}]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected = [] if path in OPEN_PATHS else None
            assert operation.get("security") == expected, path
