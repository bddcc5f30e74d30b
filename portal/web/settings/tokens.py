"""API tokens: create (the value is shown once), list, revoke."""

from __future__ import annotations

from flask import abort
from flask_babel import gettext as _
from flask_login import current_user

from portal.models import ApiToken
from portal.web.forms import TokenForm
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done

MAX_TOKENS = 50


def _page(form: TokenForm, plain: str = "", created: ApiToken | None = None, status: int = 200):
    tokens = list(
        ApiToken.select()
        .where(ApiToken.user == current_user.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return render(
        "settings/tokens.html",
        "tokens",
        status=status,
        form=form,
        tokens=tokens,
        plain=plain,
        created=created,
    )


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """List tokens; a POST creates one and shows its value in this response only.

    The value is never stored (only its hash), so it is rendered directly rather
    than carried through a redirect in the session cookie.
    """
    form = TokenForm()
    if form.validate_on_submit():
        count = ApiToken.select().where(ApiToken.user == current_user.id).count()
        if count >= MAX_TOKENS:
            form.name.errors.append(_("you have %(num)d tokens; revoke one first", num=MAX_TOKENS))
        else:
            row, plain = ApiToken.issue(current_user._get_current_object(), form.name.data)
            return _page(TokenForm(formdata=None), plain=plain, created=row)
    return _page(form)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def tokens_revoke(token_id: int):
    """Delete a token; programs using it get 401 from the next request on."""
    row = ApiToken.get_or_none(ApiToken.id == token_id, ApiToken.user == current_user.id)
    if row is None:
        abort(404)
    name = row.name or row.prefix
    row.delete_instance()
    if not is_htmx():
        return done(_("Revoked the token “%(name)s”.", name=name), "settings.tokens")
    return _page(TokenForm(formdata=None))
