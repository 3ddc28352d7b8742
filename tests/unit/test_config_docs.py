"""docs/configuration.md is generated from the argparse definitions and Settings: it must match them, and
every setting must be reachable from `localbox serve` (#9)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from types import ModuleType

from localbox.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == generator().render(), \
        "docs/configuration.md is stale: run python scripts/gen_config_docs.py"


def test_every_setting_has_a_serve_flag() -> None:
    flags = generator().serve_flags()
    assert {f.name for f in fields(Settings)} <= set(flags)


def test_every_command_has_complete_help() -> None:
    """Every command and every option says what it does, and --help works for each."""
    import argparse

    from localbox.cli import _parser

    commands = generator()._commands(_parser())
    assert len(commands) > 20
    for name, text, sub in commands:
        assert text, f"localbox {name} has no help line"
        for action in sub._actions:
            assert action.help, f"localbox {name}: {action.option_strings or action.dest} has no help"
            assert isinstance(action, argparse.Action)
    for words in [[], ["upload"], ["serve"], ["faults", "add"]]:
        out = subprocess.run([sys.executable, "-m", "localbox", *words, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.startswith("usage: localbox"), (words, out.stderr)
