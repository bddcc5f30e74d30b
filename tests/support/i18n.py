"""Checks that a page or an e-mail came out in the language asked for: no English left.

``english_leaks(text, lang)`` finds two kinds of leak in what a reader sees:

- a translated message's English original (any domain's catalogue), which means a
  template or a view used the text without passing it through the translations;
- common English words that no translation contains, which catches texts never marked
  for translation at all.

Pass names the host or the invitee typed (``ignore=``): those are never translated.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

from portal.i18n import DOMAINS
from portal.runtime import catalogs

LOCALES = ("en", "de", "fr", "es")
TRANSLATED = ("de", "fr", "es")
# Words a German, French or Spanish page never needs. Kept to words that are not also
# words (or names) in those languages.
ENGLISH = re.compile(
    r"\b(the|your|you|and|with|please|this|select|available|cancel|booking|meeting|"
    r"confirm|back|next|previous|month|today|choose|when|where|what|who|which|"
    r"will|has|have|been|from|here|there|sorry|yes|now|hours?|days?|weeks?|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|"
    r"march|april|june|july|august|september|october|november|december)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]")
_ATTRS = ("aria-label", "title", "placeholder", "alt", "aria-description")


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1
        button = tag == "input" and dict(attrs).get("type") in ("submit", "button")
        for name, value in attrs:
            if value and (name in _ATTRS or (name == "value" and button)):
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """What a reader sees or hears: text outside scripts, plus labels, titles, alt texts."""
    parser = _Visible()
    parser.feed(html)
    return " \n".join(p.strip() for p in parser.parts if p.strip())


@lru_cache(maxsize=8)
def _originals(lang: str) -> tuple[str, ...]:
    """English fragments (between placeholders) of every message translated differently."""
    found: set[str] = set()
    for domain in DOMAINS:
        for msgid, msgstr in catalogs.translations(lang, domain).items():
            if not msgstr or msgstr == msgid:
                continue
            for piece in _PLACEHOLDER.split(msgid):
                piece = piece.strip(" .,:;!?()…—–-")
                # Whole phrases only: a single word may well be the same in both languages.
                if len(piece) >= 12 and " " in piece:
                    found.add(piece)
    return tuple(sorted(found, key=len, reverse=True))


def english_leaks(text: str, lang: str, ignore: tuple[str, ...] = ()) -> list[str]:
    """English left in ``text`` (see the module's doc); [] when the page is all ``lang``."""
    if lang == "en":
        return []
    for name in ignore:
        if name:
            text = text.replace(name, " ")
    leaks = [piece for piece in _originals(lang) if piece in text]
    leaks += sorted({m.group(0) for m in ENGLISH.finditer(text)})
    return leaks
