"""The functional core imports only the standard library, pydantic, cryptography and msgspec."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import shared

FORBIDDEN = ("sqlmodel", "sqlalchemy", "fastapi", "starlette", "flet", "httpx", "cv2", "pyzbar",
             "uvicorn", "numpy", "zxingcpp")  # fmt: skip


def test_shared_imports_nothing_but_stdlib_pydantic_cryptography_and_msgspec() -> None:
    modules = [f"shared.{m.name}" for m in pkgutil.iter_modules(shared.__path__)]
    assert len(modules) >= 5
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", probe], text=True))
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert leaked == []
