"""The per-process memos are bounded by bytes: filling them past the cap evicts the oldest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.booking import slot_memo
from portal.booking.availability import HostRules, MeetingRules
from portal.booking.slot_memo import ByteLRU

NOW = datetime.now(UTC).replace(microsecond=0)


def test_byte_lru_evicts_least_recently_used_past_its_limit():
    memo = ByteLRU(1000)
    for i in range(3):
        memo.put(("k", i), i, 300)
    assert memo.get(("k", 0)) == 0  # now the most recently used
    memo.put(("k", 3), 3, 300)  # 1200 bytes: the least recently used (1) goes
    assert memo.get(("k", 1)) is None
    assert [memo.get(("k", i)) for i in (0, 2, 3)] == [0, 2, 3]
    assert memo.size == 900 <= memo.limit
    for i in range(4, 50):
        memo.put(("k", i), i, 300)
        assert memo.size <= memo.limit
    assert len(memo) == 3


def test_byte_lru_replaces_a_key_and_refuses_what_never_fits():
    memo = ByteLRU(1000)
    memo.put(("a",), "old", 600)
    memo.put(("a",), "new", 700)
    assert memo.get(("a",)) == "new" and memo.size == 700
    memo.put(("huge",), "x", 1001)
    assert memo.get(("huge",)) is None and memo.get(("a",)) == "new"


@pytest.fixture
def small_memo():
    slot_memo.set_limit(20_000)
    slot_memo.clear()
    yield slot_memo._memo
    slot_memo.set_limit(slot_memo.DEFAULT_BYTES)
    slot_memo.clear()


def test_slot_memo_stays_under_its_byte_cap(small_memo):
    host = HostRules(
        timezone="UTC", weekly={d: (("09:00", "17:00"),) for d in range(7)}, overrides={}
    )
    mt = MeetingRules(slug="1", duration=timedelta(minutes=30))
    computed = []

    def answer(day: int) -> list[datetime]:
        computed.append(day)
        return [NOW + timedelta(days=day, minutes=30 * i) for i in range(100)]  # ~6 KB each

    def ask(day: int) -> list[datetime]:
        start = NOW + timedelta(days=day)
        return slot_memo.slots(
            ("busy", day), host, mt, [], NOW, start, start + timedelta(days=1), lambda: answer(day)
        )

    for day in range(40):
        assert ask(day) == answer(day)
        assert small_memo.size <= small_memo.limit
    assert 0 < len(small_memo) < 40
    computed.clear()
    ask(39)  # recent: still held
    assert computed == []
    ask(0)  # the oldest: evicted long ago, computed again
    assert computed == [0]
