"""The architecture is enforced, not hoped for: the import contracts of pyproject.toml
(`[tool.importlinter]`, explained in docs/architecture.md) and the size of every module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = ("shared", "sync_server", "scanner_app", "doorcheck")
MAX_LINES = 400


def test_the_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in result.stdout, result.stdout[-2000:]


def test_no_module_reaches_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert len(sizes) > 100  # the packages were found
    too_big = {name: n for name, n in sizes.items() if n >= MAX_LINES}
    assert too_big == {}, too_big
