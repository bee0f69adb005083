"""The API's routers, one module per resource. ``create_app`` includes every router in :data:`ROUTERS`,
in order; another resource plugs in by appending its router here (one line)."""

from __future__ import annotations

from fastapi import APIRouter

from api import dashboard
from api.routes import audit, catalog, grants, queries

ROUTERS: list[APIRouter] = [catalog.router, grants.router, queries.router]
ROUTERS += [audit.router, dashboard.router]  # the audit API and the dashboard's pages
