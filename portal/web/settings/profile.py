"""Settings: the overview a host lands on, their profile and their password."""

from __future__ import annotations

from datetime import timedelta

from flask import flash, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user
from peewee import IntegrityError
from wtforms import SelectField
from wtforms.validators import ValidationError

from portal import clock
from portal.i18n import LANGUAGES
from portal.models import Booking, MeetingType, User, db, to_db
from portal.web import forms
from portal.web.forms import PasswordForm, zone_suggestions
from portal.web.render import is_htmx, render
from portal.web.settings import base_url, bp, done


def language_choices() -> list[tuple[str, str]]:
    """ "Automatic" (stored as "", the browser's language), then each language in itself."""
    return [("", str(_l("Automatic (your browser's language)"))), *LANGUAGES.items()]


class ProfileForm(forms.ProfileForm):
    """The profile, with the language the host's pages and e-mails are written in."""

    locale = SelectField(
        _l("Language"),
        choices=language_choices,
        validate_choice=False,  # checked below, with a message that says what to do
        description=_l("Your settings pages and the e-mails Kairos sends you use this language."),
    )

    def validate_locale(self, field) -> None:
        if field.data not in dict(language_choices()):
            raise ValidationError(_("pick a language from the list"))


@bp.route("/")
def index():
    """Where a host lands after signing in: their link, what is next, what is missing."""
    now = clock.now()
    upcoming = list(
        Booking.select()
        .where(
            Booking.host == current_user.id,
            Booking.status == "confirmed",
            Booking.end > to_db(now),
        )
        .order_by(Booking.start)
        .limit(5)
    )
    types = list(
        MeetingType.select().where(MeetingType.user == current_user.id).order_by(MeetingType.name)
    )
    week = (
        Booking.select()
        .where(
            Booking.host == current_user.id,
            Booking.status == "confirmed",
            Booking.start >= to_db(now),
            Booking.start < to_db(now + timedelta(days=7)),
        )
        .count()
    )
    from portal.booking.hours import weekly_windows
    from portal.web.settings.hours import summary

    return render(
        "settings/index.html",
        upcoming=upcoming,
        types=types,
        week_count=week,
        hours=summary(weekly_windows(current_user.id)),
        public_url=f"{base_url()}/{current_user.slug}",
    )


# ---------------------------------------------------------------- profile


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """Name, link name, time zone, minimum notice, language and the public-page switch."""
    user: User = current_user._get_current_object()
    language = user.locale
    form = ProfileForm(obj=user)
    saved = False
    valid = form.validate_on_submit()
    # Checked even when other fields are wrong, so every problem shows at once.
    if (
        request.method == "POST"
        and not form.slug.errors
        and User.select().where(User.slug == form.slug.data, User.id != user.id).exists()
    ):
        form.slug.errors.append(_("another host has this link name"))
        valid = False
    if valid:
        try:
            with db.atomic():
                form.populate_obj(user)
                user.save()
        except IntegrityError:  # taken by a concurrent request after the check above
            form.slug.errors.append(_("another host has this link name"))
        else:
            if user.locale != language:
                refresh()  # what follows (the message, the page) in the new language
                if is_htmx():  # the whole page changes language, not just this form
                    flash(_("Profile saved."), "info")
                    return "", 200, {"HX-Refresh": "true"}
            if not is_htmx():
                return done(_("Profile saved."), "settings.profile")
            saved = True
    return render(
        "settings/profile.html",
        "profile",
        form=form,
        password_form=PasswordForm(formdata=None),
        timezones=zone_suggestions(),
        saved=saved,
    )


@bp.route("/password", methods=["POST"])
def password():
    """Change the password; the current one is asked again so a borrowed session cannot."""
    user: User = current_user._get_current_object()
    form = PasswordForm()
    saved = False
    if form.validate_on_submit():
        if not user.check_password(form.current_password.data):
            form.current_password.errors.append(_("this is not your current password"))
        else:
            user.set_password(form.new_password.data)
            user.save()
            # Other sessions end with the old password; this one carries on.
            session["pwv"] = user.session_version()
            if not is_htmx():
                return done(_("Password changed."), "settings.profile")
            saved = True
            form = PasswordForm(formdata=None)
    return render(
        "settings/profile.html",
        "password",
        form=ProfileForm(obj=user, formdata=None),
        password_form=form,
        timezones=zone_suggestions(),
        password_saved=saved,
    )
