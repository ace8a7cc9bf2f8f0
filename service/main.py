"""``service.main:app``, the ASGI application by the name the contract gives it.

The app is assembled in :mod:`service.api.app`.
"""

from __future__ import annotations

from service.api.app import app, create_app

__all__ = ["app", "create_app"]
