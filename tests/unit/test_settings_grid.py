"""Pure helpers of the host pages: the hours grid ↔ windows, time ranges, origins, next=."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.web.auth import safe_next
from portal.web.forms import normalize_origin, parse_ranges
from portal.web.settings.hours import cells_from_rows, parse_cells, windows_from_cells

grids = st.lists(st.lists(st.booleans(), min_size=48, max_size=48), min_size=7, max_size=7)


@given(grids)
def test_grid_to_windows_and_back_is_lossless(grid):
    windows = windows_from_cells(grid)
    rows = [
        SimpleNamespace(weekday=d, start=a, end=b) for d, runs in windows.items() for a, b in runs
    ]
    back, ragged = cells_from_rows(rows)
    assert back == grid and not ragged
    # Windows never touch: adjacent cells were merged.
    for runs in windows.values():
        assert all(prev[1] < nxt[0] for prev, nxt in zip(runs, runs[1:], strict=False))


def test_last_cell_ends_at_midnight_as_24_00():
    grid = [[False] * 48 for _ in range(7)]
    grid[6][46] = grid[6][47] = True
    assert windows_from_cells(grid)[6] == [("23:00", "24:00")]


def test_parse_cells_rejects_anything_but_day_dash_slot():
    assert parse_cells(["0-0", "6-47"]) is not None
    for bad in ("7-0", "0-48", "0-", "-1", "a-b", "0-01x", " 0-1"):
        assert parse_cells([bad]) is None, bad


def test_ranges_are_sorted_and_checked():
    assert parse_ranges("14:00-15:00; 9:00 – 10:30") == [("09:00", "10:30"), ("14:00", "15:00")]
    assert parse_ranges("22:00—24:00") == [("22:00", "24:00")]
    for bad in ("", "09:00", "09:00-09:00", "25:00-26:00", "09:00-10:00, 09:30-11:00"):
        with pytest.raises(ValueError):
            parse_ranges(bad)


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://Example.COM", "https://example.com"),
        ("https://example.com/", "https://example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_take_the_form_browsers_send(raw, origin):
    assert normalize_origin(raw) == origin


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/settings/types?x=1", "/settings/types?x=1"),
        ("/", "/"),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example", None),
        ("evil", None),
        ("/a\nb", None),
        (None, None),
    ],
)
def test_safe_next(target, kept):
    assert safe_next(target) == kept
