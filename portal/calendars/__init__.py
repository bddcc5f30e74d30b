"""Calendars: provider adapters and the connections that join them with the database."""
