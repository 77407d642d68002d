"""The explicit list of routes reachable without signing in.

Everything else requires sign-in (enforced in lms.auth.session). Besides the views
marked here, /auth/* and static files are public.
"""

from __future__ import annotations


def public(view):
    """Mark a view as reachable without signing in."""
    view.is_public = True
    return view


def public_blueprint(app, name: str) -> None:
    """Mark every view of the blueprint ``name`` public: an area that authenticates each call
    itself (the integration API: bearer tokens, never the browser's session)."""
    app.extensions.setdefault("lms_public_blueprints", set()).add(f"{name}.")


def is_public_endpoint(app, endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # 404s and the like: answered by error handlers
    if endpoint == "static" or endpoint.startswith("auth."):
        return True
    if endpoint.startswith(tuple(app.extensions.get("lms_public_blueprints", ()))):
        return True
    view = app.view_functions.get(endpoint)
    return bool(getattr(view, "is_public", False))
