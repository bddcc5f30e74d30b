"""Settings → Meeting link (personal meeting link, e-mail signature) and Calendar feed.

The meeting link is where meetings of the "My personal meeting link" kind
happen (``portal.booking.locations``); the signature closes the e-mails invitees get.
The calendar feed is a secret URL serving the host's bookings as iCalendar
(``portal.notify.feeds``), shown here with regenerate and turn-off buttons.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from portal.booking import locations, questions
from portal.models import User, utcnow
from portal.notify import feeds
from portal.notify.ical import meeting_link
from portal.web.render import is_htmx, render
from portal.web.settings import bp, done


class MeetingDetailsForm(FlaskForm):
    meeting_link = StringField(
        _l("Personal meeting link"),
        description=_l(
            "Your Zoom, Teams, Webex or other room, e.g. https://zoom.us/j/123456789. "
            "Meeting types set to “My personal meeting link” send invitees here."
        ),
        render_kw={"type": "url", "inputmode": "url", "spellcheck": "false", "autocomplete": "url"},
    )
    email_signature = TextAreaField(
        _l("E-mail signature"),
        description=_l(
            "Plain text under the e-mails your invitees get (confirmations, changes, "
            "reminders). Links and markup are shown as typed."
        ),
        render_kw={"rows": 4},
    )

    def validate_meeting_link(self, field) -> None:
        try:
            field.data = locations.clean_meeting_link(field.data or "")
        except locations.LocationError as exc:
            raise ValidationError(exc.message) from exc

    def validate_email_signature(self, field) -> None:
        try:
            field.data = locations.clean_signature(field.data or "")
        except locations.LocationError as exc:
            raise ValidationError(exc.message) from exc


@bp.context_processor
def _meeting_helpers() -> dict:
    """For every settings page: where a booking meets, its answers, and type warnings."""

    def location_problem(kind: str) -> str:
        """Why a Meet/Teams type cannot get links for the signed-in host now ("" if it can)."""
        return locations.calendar_problem(current_user.id, kind)

    return {
        "location_problem": location_problem,
        "meeting_link": meeting_link,
        # A booking's age is read on the clock that stamped its created_at.
        "link_status": lambda booking: locations.join_link_status(booking, now=utcnow()),
        "answered": lambda booking: questions.answered(booking.answer_list()),
    }


@bp.route("/meeting", methods=["GET", "POST"])
def meeting_details():
    """The personal meeting link and the e-mail signature (htmx saves in place)."""
    user: User = current_user._get_current_object()
    form = MeetingDetailsForm(obj=user)
    saved = False
    if form.validate_on_submit():
        try:
            locations.save_meeting_details(user, form.meeting_link.data, form.email_signature.data)
        except locations.LocationError as exc:
            form[exc.field].errors.append(exc.message)
        else:
            if not is_htmx():
                return done(_("Meeting link and signature saved."), "settings.meeting_details")
            saved = True
    return render("details/meeting.html", "meeting", form=form, saved=saved)


# ---------------------------------------------------------------- calendar feed


def _feed_page(message: str = ""):
    user = User.get_by_id(current_user.id)
    return render("details/feed.html", "feed", feed_url=feeds.feed_url(user), message=message)


@bp.route("/feed")
def feed():
    """The secret feed URL (when there is one), to paste into a calendar's "subscribe"."""
    return _feed_page()


@bp.route("/feed", methods=["POST"])
def feed_regenerate():
    """Create the feed, or replace its URL: the old one stops working at once."""
    user = User.get_by_id(current_user.id)
    had = bool(user.feed_salt)
    feeds.regenerate(user)
    message = _("New feed URL created; the old one no longer works.") if had else _("Feed created.")
    if not is_htmx():
        return done(message, "settings.feed")
    return _feed_page(message)


@bp.route("/feed/revoke", methods=["POST"])
def feed_revoke():
    """Turn the feed off; calendars subscribed to it stop getting bookings."""
    feeds.revoke(User.get_by_id(current_user.id))
    if not is_htmx():
        return done(_("The calendar feed is off."), "settings.feed")
    return _feed_page(_("The calendar feed is off."))
