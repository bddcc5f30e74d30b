"""Collects provider harnesses for the contract suite.

Every ``tests/contract/harnesses/<name>.py`` (files starting with ``_`` are
skipped) defines a fixture ``harness_<name>``; the ``harness`` fixture below
is parametrized over all of them, so a new provider joins the suite by adding
its file — no list to edit here. Fixtures defined in a harness file (its
server, its fakes) are re-exported from this conftest so pytest sees them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from _pytest.fixtures import FixtureFunctionDefinition

HARNESS_DIR = Path(__file__).parent / "harnesses"


def _load_harness_modules() -> list[str]:
    names: list[str] = []
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
                if attr.startswith("harness_"):
                    names.append(attr.removeprefix("harness_"))
    return names


HARNESS_NAMES = _load_harness_modules()


@pytest.fixture(params=HARNESS_NAMES)
def harness(request):
    """The provider under test (one parameter per harness file)."""
    return request.getfixturevalue(f"harness_{request.param}")
