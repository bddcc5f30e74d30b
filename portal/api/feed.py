"""API: the host's private calendar feed URL — read, regenerate, turn off (/api/v1/feed)."""

from __future__ import annotations

from flask import g, jsonify

from portal.api.base import operation, require_token
from portal.api.details import bp
from portal.api.schemas.details import Feed
from portal.models import User
from portal.notify import feeds


def _feed(user: User) -> dict:
    url = feeds.feed_url(user)
    return {"active": bool(url), "url": url or None}


@bp.get("/feed")
@require_token
@operation("Your private calendar feed URL", "feed", {200: ("feed", Feed)})
def get_feed():
    return jsonify(_feed(User.get_by_id(g.api_user.id)))


@bp.post("/feed")
@require_token
@operation(
    "Create the feed, or give it a new URL (the old one stops working)",
    "feed",
    {201: ("feed", Feed)},
)
def regenerate_feed():
    """Create the feed, or give it a new URL (the old one stops working)."""
    user = User.get_by_id(g.api_user.id)
    feeds.regenerate(user)
    return jsonify(_feed(user)), 201


@bp.delete("/feed")
@require_token
@operation("Turn the feed off", "feed", {204: ("turned off", None)})
def revoke_feed():
    feeds.revoke(User.get_by_id(g.api_user.id))
    return "", 204
