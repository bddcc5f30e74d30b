"""Embedding: the snippet for the host's own site, and the sites allowed to frame the pages.

The snippet loads ``/static/embed.js`` (served with the public pages), which
creates the iframe and resizes it; a plain ``<iframe>`` is offered for sites
that do not allow scripts. The allow-list feeds ``frame-ancestors`` and the
``Origin`` check of the public booking form, both of which compare exact
``scheme://host[:port]`` strings, hence the normalisation in ``forms``.
"""

from __future__ import annotations

from html import escape

from flask import request
from flask_babel import gettext as _
from flask_login import current_user

from portal.models import MeetingType, User
from portal.web.forms import EmbedForm
from portal.web.render import is_htmx, render
from portal.web.settings import base_url, bp, done


def snippets(host: str, type_slug: str) -> dict[str, str]:
    base = base_url()
    page = f"{base}/embed/{host}/{type_slug}"
    title = escape(_("Book a meeting"))  # read by screen readers on the host's own site
    return {
        "script": f'<script src="{base}/static/embed.js" data-kairos="{page}" async></script>',
        "iframe": (
            f'<iframe src="{page}" title="{title}" loading="lazy" '
            'style="width:100%;min-height:680px;border:0"></iframe>'
        ),
    }


def _page(form: EmbedForm, saved: bool = False):
    user: User = current_user._get_current_object()
    types = list(
        MeetingType.select()
        .where(MeetingType.user == user.id, MeetingType.is_active == True)  # noqa: E712
        .order_by(MeetingType.name)
    )
    wanted = request.args.get("type", "")
    chosen = next((t for t in types if t.slug == wanted), types[0] if types else None)
    return render(
        "settings/embed.html",
        "origins" if request.method == "POST" else "embed",
        form=form,
        saved=saved,
        types=types,
        chosen=chosen,
        code=snippets(user.slug, chosen.slug) if chosen else None,
    )


@bp.route("/embed", methods=["GET", "POST"])
def embed():
    """The snippet to paste (``?type=<slug>`` picks the meeting type) and the allow-list."""
    user: User = current_user._get_current_object()
    form = EmbedForm(data={"origins": "\n".join(user.origins())})
    if form.validate_on_submit():
        user.embed_origins = "\n".join(form.clean)
        user.save()
        if not is_htmx():
            return done(_("Allowed sites saved."), "settings.embed")
        return _page(EmbedForm(formdata=None, data={"origins": "\n".join(form.clean)}), saved=True)
    return _page(form)
