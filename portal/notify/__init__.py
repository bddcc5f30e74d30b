"""Telling people: e-mail, iCalendar files, webhooks and the private calendar feed."""
