"""What several test suites share and none of them is: helpers, fixtures to import, servers.

``app`` (the test app, hosts, a signed-in browser), ``clock`` (the tests' "now"),
``processes`` and ``servers`` (real local servers: Radicale, ICS feeds, proxies),
``booking`` (a host, its slots and bookings), ``ical`` (VTIMEZONE blocks),
``api``, ``oauth``, ``exchange`` and ``recovery`` (each the shared pieces of one
group of integration tests) and ``strays`` (the session's stray-process check).
The provider fakes live in tests/fakes/; fixtures are declared in tests/conftest.py.
"""
