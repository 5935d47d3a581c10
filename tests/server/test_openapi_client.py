"""An integrator's first hour (SPEC section 13): `openapi-python-client` generates a client from
the served `/openapi.json` with no warning and every operation, and that client, unedited, drives
an online scan, a registration with an idempotency key, a typed list, a typed error and an
export against a real server; `/docs` and `/redoc` load their assets from the server itself."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sync_server.app import create_app
from tests.server.conftest import Org, make_settings, setup_event

GENERATOR = str(Path(sys.executable).parent / "openapi-python-client")
# SPEC section 13: "a binary or CSV body may be typed as bytes": the generator's own option
CONFIG = (
    "content_type_overrides:\n"
    "  text/csv: application/octet-stream\n"
    "  image/png: application/octet-stream\n"
)


@pytest.fixture
def client_package(org: Org, tmp_path: Path) -> str:
    document = httpx.get(f"{org.client.base_url}/openapi.json").json()
    spec, config = tmp_path / "openapi.json", tmp_path / "config.yaml"
    spec.write_text(json.dumps(document))
    config.write_text(CONFIG)
    out = tmp_path / "doorcheck_client"
    done = subprocess.run(
        [GENERATOR, "generate", "--path", str(spec), "--output-path", str(out),
         "--meta", "none", "--config", str(config)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output and "Warning(s)" not in output, output
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            tag = operation["tags"][0].replace("-", "_")
            module = out / "api" / tag / f"{operation['operationId']}.py"
            assert module.is_file(), (method, path, module)
    sys.path.insert(0, str(tmp_path))
    try:
        yield "doorcheck_client"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("doorcheck_client")]:
            del sys.modules[name]


def test_a_generated_client_works_unedited(org: Org, client_package: str) -> None:
    def load(name: str):
        return importlib.import_module(f"{client_package}.{name}")

    setup = setup_event(org)
    eid = setup["id"]
    client = load("client").AuthenticatedClient(
        base_url=str(org.client.base_url), token=org.admin_key
    )
    models = load("models")
    register = load("api.attendees.register_attendee")
    body = models.AttendeeCreate(first_name="Ana", last_name="Ruiz", ticket_type="vip",
                                 email="ana@example.com")  # fmt: skip
    first = register.sync_detailed(eid, client=client, body=body, idempotency_key="form-1")
    again = register.sync_detailed(eid, client=client, body=body, idempotency_key="form-1")
    assert first.status_code == again.status_code == 201
    assert isinstance(first.parsed, models.AttendeePublic)
    assert again.parsed.id == first.parsed.id and again.headers["idempotent-replayed"] == "true"

    scan = load("api.scans.scan_online").sync(
        setup["gate_a"]["id"],
        client=client,
        body=models.ScanOnlineScanRequest(code=first.parsed.qr),
    )
    assert isinstance(scan, models.ScanResult) and scan.verdict.status == "accepted"

    page = load("api.attendees.list_attendees").sync(eid, client=client)
    assert [type(a) for a in page.data] == [models.AttendeePublic]
    assert page.data[0].email == "ana@example.com"

    missing = load("api.attendees.get_attendee").sync("att_nope", eid, client=client)
    assert isinstance(missing, models.ErrorEnvelope) and missing.error.code == "not_found"
    duplicate = register.sync(eid, client=client, body=body)
    assert isinstance(duplicate, models.ErrorEnvelope) and duplicate.error.code == "conflict"

    exported = load("api.exports.export_attendees").sync_detailed(eid, client=client)
    assert exported.status_code == 200 and b"ana@example.com" in exported.content


def test_the_docs_work_offline(org: Org) -> None:
    base = str(org.client.base_url)
    for page in ("/docs", "/redoc"):
        html = httpx.get(base + page).text
        assert "cdn" not in html.lower() and "googleapis" not in html
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/redoc.standalone.js"):
            if asset.rsplit("/", 1)[1] in html:
                assert httpx.get(base + asset).status_code == 200
    document = httpx.get(base + "/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "$defs" not in json.dumps(document)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_operation_is_described_for_integrators(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path}/d.db", tmp_path))
    operations = [
        op for ops in app.openapi()["paths"].values() for op in ops.values() if "responses" in op
    ]
    assert len(operations) > 50
    for op in operations:
        summary, description = op.get("summary", ""), op.get("description", "")
        default = op["operationId"].replace("_", " ").title()  # what FastAPI would make up
        assert summary and summary != default and len(summary.split()) >= 2, op["operationId"]
        assert len(description) > 20, op["operationId"]
    scan = app.openapi()["paths"]["/v1/checkpoints/{checkpoint_id}/scans"]["post"]
    assert "Needs" in scan["description"] and "Idempotency" not in scan["summary"]
