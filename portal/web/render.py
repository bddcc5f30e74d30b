"""One helper for htmx-aware rendering: the whole page, or one named block of it."""

from __future__ import annotations

from flask import render_template
from htmx_flask import request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """An htmx swap (not a boosted navigation, which wants the whole page).

    ``request.htmx`` comes from htmx-flask (bound in ``portal.extensions``).
    """
    return bool(request.htmx) and not request.htmx.boosted


def form_status(code: int) -> int:
    """htmx swaps only 2xx answers, so a re-rendered form goes back as 200 there."""
    return 200 if request.htmx else code


def render(template: str, block: str | None = None, status: int = 200, **context):
    """Render ``block`` of ``template`` for an htmx request, the full page otherwise.

    The block name, the element id and the swap target share one name, so a
    fragment and its place in the page can never drift apart.
    """
    if block and is_htmx():
        return render_block(template, block, **context), status
    return render_template(template, **context), status
