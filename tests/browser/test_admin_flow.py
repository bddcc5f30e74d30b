"""The admin runs a team from the browser: invite a co-worker, who joins; then find a time.

Two people, two browser contexts (own cookies): Ada (the admin, Berlin) invites
Cora by e-mail address, Cora opens the link, sets her name, link name and
password, and lands in her settings; Ada then picks Cora on "Find a time",
sees next week's common free slots highlighted and books one.
"""

from __future__ import annotations

from datetime import timedelta

from portal.booking.checks import zone
from portal.models import Booking, BookingAttendee, User, db, utcnow
from portal.org import findtime
from tests.browser.conftest import no_horizontal_overflow, sign_in


def test_admin_invites_coworker_who_joins_and_they_find_a_time(live_server, new_page):
    live_server.hosts.create("ada", name="Ada Admin", tz="Europe/Berlin", admin=True)
    ada = new_page()
    sign_in(ada, live_server.url, "ada@example.com")

    # Invite Cora from the People page (an htmx form; the link is shown once as well).
    ada.click('nav a[href="/settings/admin/"]')
    ada.wait_for_url("**/settings/admin/")
    ada.fill("input[name=email]", "cora@example.com")
    ada.click("text=Send invitation")
    link = ada.locator("#invite-link").input_value()
    assert link.startswith(live_server.url + "/invite/")
    assert ada.locator("text=cora@example.com").first.is_visible()

    # Cora accepts in her own browser and chooses a password.
    cora = new_page(timezone_id="UTC")
    cora.goto(link)
    cora.fill("input[name=name]", "Cora Coworker")
    assert cora.locator("input[name=slug]").input_value() == "cora"
    cora.fill("input[name=password]", "cora's password")
    cora.fill("input[name=confirm]", "cora's password")
    cora.click("text=Create my account")
    cora.wait_for_url("**/settings/hours")
    assert "Cora Coworker" in cora.content() or cora.locator("text=Weekly hours").first.is_visible()
    # The link is spent.
    again = new_page()
    again.goto(link)
    assert again.locator("text=This invitation no longer works").is_visible()

    # Ada finds a time with Cora next week: Cora works 09–17 UTC, Ada 09–17 Berlin.
    monday = findtime.week_start(utcnow().date()) + timedelta(weeks=1)
    ada.goto(live_server.at("/settings/find-time/"))
    ada.check("label:has-text('Cora Coworker') input")
    ada.fill("input[name=week]", monday.isoformat())
    ada.click("text=Show free times")
    ada.wait_for_selector("table.ft-grid")
    assert "week=" in ada.url  # the picked week is in the address (htmx pushed it)
    slots = ada.locator("button.ft-slot")
    assert slots.count() > 0
    first = slots.first
    # Monday's first common half hour: Cora starts at 09:00 UTC, 10:00 in Ada's Berlin.
    assert first.inner_text().startswith("10:00") and "Monday" in first.inner_text()
    assert no_horizontal_overflow(ada)
    ada.fill("input[name=title]", "Kick-off")
    first.click()
    ada.wait_for_url("**/settings/appointments/**")
    assert ada.locator("h1", has_text="Kick-off").is_visible()
    assert ada.locator("text=Cora Coworker").first.is_visible()

    with live_server.app.app_context(), db.connection_context():
        booking = Booking.get(Booking.title == "Kick-off")
        cora_user = User.get(User.email == "cora@example.com")
        assert booking.host.email == "ada@example.com" and booking.status == "confirmed"
        assert booking.start_utc.astimezone(zone("Europe/Berlin")).hour == 10
        assert [a.user_id for a in BookingAttendee.select()] == [cora_user.id]
        booked = booking.start_utc

    # Back on "Find a time", that half hour is now busy for both of them.
    ada.goto(live_server.at(f"/settings/find-time/?with={cora_user.id}&week={monday.isoformat()}"))
    ada.wait_for_selector("table.ft-grid")
    taken = ada.locator(f'button.ft-slot[value="{booked.isoformat()}"]')
    later = ada.locator(f'button.ft-slot[value="{(booked + timedelta(minutes=30)).isoformat()}"]')
    assert taken.count() == 0 and later.count() == 1
