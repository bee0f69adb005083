"""The auditors' dashboard: server-rendered pages under ``/dashboard`` (``routes``), how each is
rendered (``rendering``), its sign-in sessions (``sessions``) and its chart (``charts``)."""

from api.dashboard.routes import router
from api.dashboard.sessions import COOKIE, DashboardSessions

__all__ = ["COOKIE", "DashboardSessions", "router"]
