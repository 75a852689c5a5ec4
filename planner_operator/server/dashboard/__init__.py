"""The Planner dashboard: server-rendered pages (Jinja2) under ``/planner``.

``router()`` gives the routes for ``create_app``; templates and the one stylesheet ship inside
the package, so a wheel install serves the dashboard with no build step and no network.
"""

from planner_operator.server.dashboard.router import router

__all__ = ["router"]
