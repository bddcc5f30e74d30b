"""The message catalogues: extract, update, compile and check them (``make messages``,
``flask messages update|check``, and the completeness test CI runs).

One catalogue per domain (``portal.i18n.DOMAINS``), each extracted with its own mapping
``translations/<domain>.cfg`` from the files that part of the product owns, into
``translations/<domain>.pot`` and ``translations/<lang>/LC_MESSAGES/<domain>.po|.mo``.
Templates use ``{% trans %}`` blocks with whitespace trimmed (the ``ext.i18n.trimmed``
policy is on in the app, and extraction trims alike).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from portal.i18n import DEFAULT, DOMAINS, LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "translations"
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "lazy_gettext": None,
    "_l": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
}
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != DEFAULT)


def extract(domain: str) -> Catalog:
    """The domain's messages as they are in the code and templates now."""
    with open(FOLDER / f"{domain}.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    for pattern, method in method_map:
        if method == "jinja2":
            options_map.setdefault(pattern, {})["trimmed"] = "true"
    catalog = Catalog(project="Kairos", domain=domain, charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(lang: str, domain: str) -> Path:
    return FOLDER / lang / "LC_MESSAGES" / f"{domain}.po"


def load_po(lang: str, domain: str) -> Catalog:
    path = po_path(lang, domain)
    if not path.exists():
        catalog = Catalog(locale=lang, domain=domain, project="Kairos", charset="utf-8")
        catalog.fuzzy = False
        return catalog
    with open(path, "rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def _po_bytes(catalog: Catalog, header: bool = True) -> bytes:
    out = io.BytesIO()
    write_po(
        out,
        catalog,
        width=100,
        omit_header=not header,
        ignore_obsolete=True,
        sort_output=True,
        include_lineno=False,
    )
    return out.getvalue()


def _mo_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def update(domains: tuple[str, ...] = DOMAINS) -> None:
    """Re-extract, merge into every language's ``.po`` (new entries empty, gone ones
    dropped) and compile the ``.mo`` files."""
    for domain in domains:
        template = extract(domain)
        _write(FOLDER / f"{domain}.pot", _po_bytes(template, header=False))
        for lang in TRANSLATED:
            catalog = load_po(lang, domain)
            created = catalog.creation_date
            catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
            # Keep the header's dates: a catalogue whose messages did not change keeps
            # its bytes, so branches that re-extract do not collide on the header.
            catalog.creation_date = catalog.revision_date = created
            _write(po_path(lang, domain), _po_bytes(catalog))
            _write(po_path(lang, domain).with_suffix(".mo"), _mo_bytes(catalog))


def fill(domain: str, lang: str, strings: dict[str, str | list[str]]) -> int:
    """Set translations in ``lang``'s ``.po`` of ``domain`` (msgid → msgstr; a list for
    plural forms), then compile. Returns how many entries changed."""
    catalog = load_po(lang, domain)
    changed = 0
    for message in catalog:
        key = message.id if isinstance(message.id, str) else message.id[0]
        if not key or key not in strings:
            continue
        value = strings[key]
        message.string = tuple(value) if isinstance(value, list) else value
        message.flags.discard("fuzzy")
        changed += 1
    _write(po_path(lang, domain), _po_bytes(catalog))
    _write(po_path(lang, domain).with_suffix(".mo"), _mo_bytes(catalog))
    return changed


@dataclass
class Problems:
    """What keeps a domain's catalogues from being complete, per language."""

    missing: dict[str, list[str]] = field(default_factory=dict)  # in the code, not in the .po
    untranslated: dict[str, list[str]] = field(default_factory=dict)  # empty or fuzzy
    stale: dict[str, list[str]] = field(default_factory=dict)  # in the .po, gone from the code
    invalid: dict[str, list[str]] = field(default_factory=dict)  # placeholders that differ
    uncompiled: list[str] = field(default_factory=list)  # .mo differs from the .po

    def __bool__(self) -> bool:
        return any((self.missing, self.untranslated, self.stale, self.invalid, self.uncompiled))


def _key(message) -> tuple:
    ident = message.id if isinstance(message.id, str) else tuple(message.id)
    return (ident, message.context)


def check(domain: str) -> Problems:
    """Compare the code's messages with each language's catalogue (nothing is written)."""
    template = extract(domain)
    wanted = {_key(m) for m in template if m.id}
    problems = Problems()
    for lang in TRANSLATED:
        catalog = load_po(lang, domain)
        have = {_key(m): m for m in catalog if m.id}
        missing = sorted(str(k[0]) for k in wanted - have.keys())
        stale = sorted(str(k[0]) for k in have.keys() - wanted)
        empty = sorted(
            str(k[0])
            for k, m in have.items()
            if k in wanted
            and (m.fuzzy or not (all(m.string) if isinstance(m.string, tuple) else m.string))
        )
        invalid = [f"{m.id!r}: {err}" for m, errors in catalog.check() for err in errors]
        for name, found in (
            ("missing", missing),
            ("untranslated", empty),
            ("stale", stale),
            ("invalid", invalid),
        ):
            if found:
                getattr(problems, name)[lang] = found
        mo = po_path(lang, domain).with_suffix(".mo")
        if have and (not mo.exists() or mo.read_bytes() != _mo_bytes(catalog)):
            problems.uncompiled.append(str(mo.relative_to(ROOT)))
    return problems


def translations(lang: str, domain: str) -> dict[str, str]:
    """msgid → msgstr of the compiled catalogue (for tests that look for leaks)."""
    mo = po_path(lang, domain).with_suffix(".mo")
    if not mo.exists():
        return {}
    with open(mo, "rb") as fh:
        catalog = read_mo(fh)
    out: dict[str, str] = {}
    for m in catalog:
        if not m.id or not m.string:
            continue
        key = m.id if isinstance(m.id, str) else m.id[0]
        out[key] = m.string if isinstance(m.string, str) else m.string[0]
    return out
