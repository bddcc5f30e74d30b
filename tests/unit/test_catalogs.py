"""The translations are complete: every text the code and templates mark for translation
is in each language's catalogue, translated, with the same placeholders, and compiled.

This is the check `make messages` keeps true; when it fails, run `make messages`, fill
in the new entries of translations/<lang>/LC_MESSAGES/<domain>.po, and run it again.
"""

from __future__ import annotations

import pytest

from portal.i18n import DOMAINS
from portal.runtime import catalogs


@pytest.mark.parametrize("domain", DOMAINS)
def test_catalogue_is_complete(domain):
    problems = catalogs.check(domain)
    assert not problems.missing, f"run `make messages`: not in the .po yet: {problems.missing}"
    assert not problems.untranslated, f"left untranslated: {problems.untranslated}"
    assert not problems.stale, f"run `make messages`: gone from the code: {problems.stale}"
    assert not problems.invalid, f"placeholders differ: {problems.invalid}"
    assert not problems.uncompiled, f"run `make messages`: .mo out of date: {problems.uncompiled}"


def test_every_domain_has_texts():
    """Each part of the product marks its texts: an empty catalogue means a mapping broke."""
    for domain in DOMAINS:
        assert len(catalogs.extract(domain)) > 0, domain
