"""Collects provider harnesses for the contract suite.

Every ``tests/contract/harnesses/<name>.py`` (files starting with ``_`` are
skipped) defines a fixture ``harness_<name>``; the ``harness`` fixture below
is parametrized over all of them, so a new provider joins the suite by adding
its file — no list to edit here. An OAuth provider's file also defines
``oauth_<name>``, and ``oauth_account`` is parametrized over those. Fixtures
defined in a harness file (its server, its fakes) are re-exported from this
conftest so pytest sees them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from _pytest.fixtures import FixtureFunctionDefinition

HARNESS_DIR = Path(__file__).parent / "harnesses"


def _load_harness_modules() -> dict[str, list[str]]:
    """Load every harness file; the provider names per fixture prefix (``harness_``, ``oauth_``)."""
    names: dict[str, list[str]] = {"harness_": [], "oauth_": []}
    for path in sorted(HARNESS_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"contract_harness_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        for attr, value in vars(module).items():
            if isinstance(value, FixtureFunctionDefinition):
                if attr in globals():
                    raise RuntimeError(f"{path.name}: fixture {attr!r} is defined twice")
                globals()[attr] = value
                for prefix, found in names.items():
                    if attr.startswith(prefix):
                        found.append(attr.removeprefix(prefix))
    return names


_NAMES = _load_harness_modules()
HARNESS_NAMES, OAUTH_NAMES = _NAMES["harness_"], _NAMES["oauth_"]


@pytest.fixture(params=HARNESS_NAMES)
def harness(request):
    """The provider under test (one parameter per harness file)."""
    return request.getfixturevalue(f"harness_{request.param}")


@pytest.fixture(params=OAUTH_NAMES)
def oauth_account(request):
    """The OAuth provider under test, as the app meets it (one parameter per ``oauth_`` fixture)."""
    return request.getfixturevalue(f"oauth_{request.param}")
