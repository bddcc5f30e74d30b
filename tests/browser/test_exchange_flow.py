"""Exchange in the browser: the admin sets up the organisation mailbox, a member picks the role
of their calendar, and a host connects a personal account — against the fake Exchange."""

from __future__ import annotations

from playwright.sync_api import expect

from portal.calendars import exchange_org
from portal.models import Calendar, Connection, db
from tests.browser.conftest import sign_in


def test_admin_sets_up_exchange_and_a_member_uses_it(live_server, new_page, ews):
    ews.add_user("kairos@example.com", "service-secret", sam="svc-kairos", name="Kairos")
    ews.add_user("bob@example.com", "bob-secret", sam="bob", name="Bob")
    ews.mailbox("bob@example.com", delegates={"kairos@example.com": "Editor"})
    live_server.hosts.create("alice", admin=True)
    bob = live_server.hosts.create("bob")

    admin = new_page()
    sign_in(admin, live_server.url, "alice@example.com")
    admin.goto(live_server.at("/settings/admin/exchange"))
    admin.fill("input[name=email]", "kairos@example.com")
    admin.fill("input[name=password]", "not-the-password")
    admin.fill("input[name=ews_url]", ews.ews_url)
    admin.click("button:has-text('Connect')")
    expect(admin.locator("#username-error")).to_contain_text("app password")
    admin.fill("input[name=password]", "service-secret")
    admin.fill("input[name=username]", "EXAMPLE\\svc-kairos")
    admin.click("button:has-text('Connect')")
    expect(admin.locator("#exchange h2").first).to_have_text("Connected")
    expect(admin.locator("#exchange")).to_contain_text("kairos@example.com")
    expect(admin.locator("#exchange")).to_contain_text("bob@example.com")

    member = new_page()
    sign_in(member, live_server.url, "bob@example.com")
    member.goto(live_server.at("/settings/connections/"))
    member.click("text=Use your Exchange calendar through your organisation")
    expect(member).to_have_url(live_server.at("/settings/exchange"))
    member.check("input[value=main]")
    member.click("button:has-text('Save')")
    expect(member.locator("#exchange")).to_contain_text("Calendar")
    expect(member.locator("input[value=main]")).to_be_checked()

    with live_server.app.app_context(), db.connection_context():
        role = exchange_org.membership(bob).role
        [calendar] = Calendar.select().join(Connection).where(Connection.user == bob)
    assert role == "main" and calendar.external_id == "bob@example.com" and calendar.write


def test_host_connects_a_personal_exchange_account(live_server, page, ews):
    ews.add_user("carol@example.com", "carol-secret", sam="carol", name="Carol")
    live_server.hosts.create("carol")
    sign_in(page, live_server.url, "carol@example.com")
    page.goto(live_server.at("/settings/connections/"))
    page.click("summary:has-text('Exchange (personal)')")
    page.fill("input[name='exchange-email']", "carol@example.com")
    page.fill("input[name='exchange-password']", "carol-secret")
    page.fill("input[name='exchange-ews_url']", ews.ews_url)
    page.click("button:has-text('Connect Exchange (personal)')")
    card = page.locator("section.connection").first
    expect(card).to_contain_text("carol@example.com")
    expect(card).to_contain_text("Exchange (on-premises)")
