"""The pytest plugin (localbox.testing.pytest_plugin), tested the way its users run it: pytester runs
test files in a fresh pytest process, where the plugin loads from its `pytest11` entry point.

`pytest_plugins = ["pytester"]` is refused in a conftest below the top level, so pytester is
registered when this conftest is configured instead."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
