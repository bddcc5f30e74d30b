"""Settings → Calendars (``/settings/connections``): connected accounts and their calendars.

Parse, call ``portal.calendars.sync``, render: add an ICS feed, a CalDAV account or a
personal Exchange account (OAuth providers have their own buttons, see
``views/oauth.py``), see each account's status and last sync, choose the
calendars checked for conflicts and the one that receives bookings, refresh
now (the status polls until the job is done; 286 stops polling), reconnect,
disconnect. Every connection and calendar is looked up through
``current_user``, so another host's id is a 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.calendars import refresh_queue, sync, write_back
from portal.calendars.providers import REGISTRY, InvalidSetup, provider_class
from portal.models import Booking, Calendar, Connection
from portal.org.settings import provider_allowed
from portal.web.guards import hosts_only
from portal.web.render import is_htmx, render
from portal.web.settings import done

bp = Blueprint("connections", __name__, url_prefix="/settings/connections")
hosts_only(bp)

POLL_DONE = 286  # htmx: stop polling


class ConnectForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect already checks every POST; these forms share one page

    def fields(self) -> dict[str, str]:
        """The form's values as the provider's ``prepare`` expects them."""
        return {name: (f.data or "").strip() for name, f in self._fields.items()}


class IcsForm(ConnectForm):
    url = StringField(
        _l("Feed address"),
        validators=[DataRequired(_l("enter the feed's address")), Length(max=2000)],
        description=_l(
            "The calendar's “secret address in iCal format” (Google), “ICS link” "
            "(Outlook) or any https:// or webcal:// link to an .ics file. Read-only: "
            "Kairos uses it for busy times only."
        ),
    )


class CalDavForm(ConnectForm):
    url = StringField(
        _l("Server address"),
        validators=[DataRequired(_l("enter the server's address")), Length(max=2000)],
        description=_l(
            "iCloud: https://caldav.icloud.com/ · Fastmail: https://caldav.fastmail.com/ · "
            "Nextcloud: https://your.server/remote.php/dav/"
        ),
    )
    username = StringField(
        _l("User name"), validators=[DataRequired(_l("enter your user name")), Length(max=320)]
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("enter the password")), Length(max=1000)],
        description=_l(
            "iCloud needs an app-specific password: create one at appleid.apple.com "
            "→ Sign-In and Security → App-Specific Passwords. Your Apple ID password will not work."
        ),
    )


class ExchangeForm(ConnectForm):
    email = StringField(
        _l("E-mail address"), validators=[DataRequired(_l("enter your address")), Length(max=320)]
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("enter the password")), Length(max=1000)],
        description=_l(
            "Your Exchange password, or an app password if your organisation uses them."
        ),
    )
    ews_url = StringField(
        _l("EWS address (optional)"),
        validators=[Optional(), Length(max=2000)],
        description=_l("Leave empty to find it automatically (autodiscover)."),
    )
    username = StringField(
        _l("User name (optional)"),
        validators=[Optional(), Length(max=320)],
        description=_l(r"When it is not your e-mail address, e.g. DOMAIN\user."),
    )


# provider → (title, form class); a provider appears once it is in the registry
FORMS: dict[str, tuple[str | LazyString, type[ConnectForm]]] = {
    "caldav": ("CalDAV / iCloud", CalDavForm),
    "ics": (_l("ICS feed"), IcsForm),
    "exchange": (_l("Exchange (personal)"), ExchangeForm),
}


def _forms(formdata=None, bound: tuple[str, ConnectForm] | None = None) -> dict[str, ConnectForm]:
    out = {}
    user = current_user._get_current_object()
    for name, (_title, cls) in FORMS.items():
        if name not in REGISTRY or not provider_allowed(user, name):  # organisation's switches
            continue
        if bound and bound[0] == name:
            out[name] = bound[1]
        else:
            out[name] = cls(formdata=formdata, prefix=name)
    return out


def _field_error(form: ConnectForm, exc: InvalidSetup) -> None:
    """Show the provider's complaint next to the field it names (else the first field)."""
    target = form._fields.get(exc.field) or next(iter(form._fields.values()))
    target.errors = [*target.errors, exc.message]


# The providers' names as this page shows them on a connection; brand names stay as they are.
TITLES: dict[str, LazyString] = {"ics": _l("ICS feed"), "exchange": _l("Exchange (on-premises)")}


def provider_title(name: str) -> str:
    if name in TITLES:
        return str(TITLES[name])
    try:
        return provider_class(name).title or name
    except KeyError:
        return name


@bp.context_processor
def _helpers():
    return {"provider_title": provider_title, "reconnectable": set(FORMS)}


def _connections() -> list[Connection]:
    return list(
        Connection.select().where(Connection.user == current_user.id).order_by(Connection.id)
    )


def _calendars_of(conns: list[Connection]) -> dict[int, list[Calendar]]:
    """Each account's calendars by name, for its card (one query for the whole page)."""
    found: dict[int, list[Calendar]] = {conn.id: [] for conn in conns}
    query = Calendar.select().where(Calendar.connection.in_(list(found))).order_by(Calendar.name)
    for calendar in query:
        found[calendar.connection_id].append(calendar)
    return found


def _own_connection(connection_id: int) -> Connection:
    conn = Connection.get_or_none(
        Connection.id == connection_id, Connection.user == current_user.id
    )
    if conn is None:
        abort(404)
    return conn


def _page(forms=None, status: int = 200, opened: str = "", message: str = ""):
    connections = _connections()
    return render(
        "settings/connections.html",
        "connections",
        status=status,
        connections=connections,
        calendars_of=_calendars_of(connections),
        forms=forms or _forms(formdata=None),
        titles={name: str(title) for name, (title, _cls) in FORMS.items()},
        opened=opened,
        message=message,
    )


@bp.route("/")
def index():
    """The accounts, their calendars and the forms to add one."""
    return _page()


@bp.route("/add/<provider>", methods=["POST"])
def add(provider: str):
    """Check the account with its server, store it (secret sealed), refresh in the background."""
    if provider not in FORMS or provider not in REGISTRY:
        abort(404)
    if not provider_allowed(current_user._get_current_object(), provider):
        abort(404)  # the organisation switched it off (sync.connect refuses as well)
    form = FORMS[provider][1](prefix=provider)
    if form.validate_on_submit():
        try:
            conn = sync.connect(current_user._get_current_object(), provider, form.fields())
        except InvalidSetup as exc:
            _field_error(form, exc)
        else:
            refresh_queue.request_refresh(conn)
            message = _("Connected %(name)s. Reading its busy times…", name=conn.label)
            if not is_htmx():
                return done(message, "connections.index")
            return _page(message=message)
    return _page(_forms(bound=(provider, form)), opened=provider)


@bp.route("/<int:connection_id>/calendars/<int:calendar_id>", methods=["POST"])
def calendar_flags(connection_id: int, calendar_id: int):
    """Checked for conflicts (checkbox), receives new bookings (one per host)."""
    conn = _own_connection(connection_id)
    calendar = Calendar.get_or_none(Calendar.id == calendar_id, Calendar.connection == conn)
    if calendar is None:
        abort(404)
    action = request.form.get("action", "")
    message = ""
    try:
        if action == "conflict":
            turned_on = request.form.get("conflict") == "on"
            sync.set_calendar_flags(calendar, conflict=turned_on)
            if turned_on:
                refresh_queue.request_refresh(conn)
            if turned_on:
                message = _("%(name)s: checked for conflicts.", name=calendar.name)
            else:
                message = _("%(name)s: not checked for conflicts.", name=calendar.name)
        elif action == "write":
            sync.set_calendar_flags(calendar, write=True)
            message = _("New bookings go to %(name)s.", name=calendar.name)
        elif action == "no-write":
            sync.set_calendar_flags(calendar, write=False)
            message = _("New bookings are not written to any calendar.")
        else:
            abort(400)
    except InvalidSetup as exc:
        message = exc.message
    if not is_htmx():
        return done(message, "connections.index")
    return _page(message=message)


@bp.route("/<int:connection_id>/refresh", methods=["POST"])
def refresh(connection_id: int):
    """Refresh now: one deduplicated job; the card then polls its status."""
    conn = _own_connection(connection_id)
    if conn.status == "needs_reconnect":
        message = _("Reconnect this account first.")
    else:
        refresh_queue.request_refresh(conn)
        message = ""
    if not is_htmx():
        return done(message or _("Refreshing %(name)s…", name=conn.label), "connections.index")
    return _card(_own_connection(connection_id), message)


def _card(conn: Connection, message: str = "", status: int = 200):
    return render(
        "settings/connections.html",
        "connection",
        status=status,
        c=conn,
        card_message=message,
        connections=[conn],
        calendars_of=_calendars_of([conn]),
        forms={},
        titles={},
        opened="",
        message="",
    )


@bp.route("/<int:connection_id>/status")
def status(connection_id: int):
    """The account card while a refresh runs; 286 (stop polling) once it is done."""
    conn = _own_connection(connection_id)
    if not request.headers.get("HX-Request"):
        return redirect(url_for("connections.index"))
    return _card(conn, status=200 if conn.status == "syncing" else POLL_DONE)


@bp.route("/<int:connection_id>/reconnect", methods=["GET", "POST"])
def reconnect(connection_id: int):
    """New credentials for an account whose server refused the old ones."""
    conn = _own_connection(connection_id)
    if conn.provider not in FORMS:
        abort(404)  # OAuth accounts reconnect through their provider (views/oauth.py)
    cls = FORMS[conn.provider][1]
    settings = conn.settings_dict()
    if request.method == "POST":
        form = cls(prefix=conn.provider)
    else:
        form = cls(formdata=None, prefix=conn.provider, data=settings)
    if form.validate_on_submit():
        try:
            sync.reconnect(conn, form.fields())
        except InvalidSetup as exc:
            _field_error(form, exc)
        else:
            refresh_queue.request_refresh(conn)
            return done(_("Reconnected %(name)s.", name=conn.label), "connections.index")
    return render(
        "settings/connection_reconnect.html",
        None,
        conn=conn,
        form=form,
        title=str(FORMS[conn.provider][0]),
    )


@bp.route("/<int:connection_id>/disconnect", methods=["POST"])
def disconnect(connection_id: int):
    """Forget the account and delete its stored secret."""
    conn = _own_connection(connection_id)
    label = conn.label
    sync.disconnect(conn)
    message = _("Disconnected %(name)s; its password or token is deleted.", name=label)
    if not is_htmx():
        return done(message, "connections.index")
    return _page(message=message)


@bp.route("/bookings/<uid>/retry", methods=["POST"])
def retry_write(uid: str):
    """The host's retry of a booking whose calendar event failed to be written."""
    booking = Booking.get_or_none(Booking.uid == uid, Booking.host == current_user.id)
    if booking is None:
        abort(404)
    queued = write_back.retry_write_back(booking)
    message = _("Writing the event to your calendar again…") if queued else _("Nothing to retry.")
    if "settings.appointments_detail" in current_app.view_functions:
        return done(message, "settings.appointments_detail", uid=uid)
    return done(message, "connections.index")
