"""Scanner devices: one-time enrolment codes (hashed, expiring), the `dk_dev_…` token a code is
traded for, revocation, remote wipe (requested by an admin, confirmed by the device), and what
the server learns of each device as it syncs.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import update
from sqlmodel import Session, col

from shared import ids
from shared.sync import WipeReport
from sync_server.db import utcnow
from sync_server.errors import ApiError
from sync_server.models import Device
from sync_server.models.base import new_id
from sync_server.security import DEVICE_TOKEN_PREFIX, hash_token, new_token, public_prefix

__all__ = [
    "ENROLMENT_TTL",
    "Enrolment",
    "confirm_wipe",
    "create_enrolment",
    "enroll",
    "normalize_enrolment_code",
    "pairing_uri",
    "record_sync",
    "request_wipe",
    "revoke_device",
]

ENROLMENT_TTL = timedelta(hours=24)
_DEVICES = Device.__table__
CODE_ALPHABET_BYTES = 10  # 80 bits, 16 base32 characters shown as XXXX-XXXX-XXXX-XXXX


class Enrolment:
    def __init__(self, device: Device, code: str, uri: str) -> None:
        self.device, self.code, self.pairing_uri = device, code, uri


def _new_code() -> str:
    raw = base64.b32encode(os.urandom(CODE_ALPHABET_BYTES)).decode()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_enrolment_code(code: str) -> str:
    """Codes are typed by people: case, spaces and dashes do not matter."""
    return "".join(ch for ch in code.upper() if ch.isalnum())[:64]


def pairing_uri(server_url: str, code: str) -> str:
    return "doorcheck://pair?" + urlencode({"server": server_url.rstrip("/"), "code": code})


def create_enrolment(
    session: Session, *, organization_id: str, name: str, server_url: str, secret: bytes
) -> Enrolment:
    code = _new_code()
    device = Device(
        id=new_id(ids.DEVICE),
        organization_id=organization_id,
        name=name,
        enrollment_code_hash=hash_token(secret, normalize_enrolment_code(code)),
        enrollment_expires_at=utcnow() + ENROLMENT_TTL,
    )
    session.add(device)
    session.commit()
    return Enrolment(device, code, pairing_uri(server_url, code))


def enroll(session: Session, *, code: str, name: str | None, secret: bytes) -> tuple[Device, str]:
    """Trade a one-time code for a device token; the code is spent even if the caller crashes."""
    digest = hash_token(secret, normalize_enrolment_code(code))
    now = utcnow()
    table = Device.__table__
    # One UPDATE claims the code atomically: two devices racing with one code cannot both win.
    claimed = (
        session.connection()
        .execute(
            update(table)  # type: ignore[arg-type]
            .where(
                table.c.enrollment_code_hash == digest,  # type: ignore[attr-defined]
                table.c.enrollment_expires_at > now,  # type: ignore[attr-defined]
                table.c.revoked_at.is_(None),  # type: ignore[attr-defined]
            )
            .values(enrollment_code_hash=None, enrolled_at=now)
            .returning(table.c.id)  # type: ignore[attr-defined]
        )
        .first()
    )
    if claimed is None:
        session.rollback()
        raise ApiError(
            401,
            "invalid_enrollment_code",
            "This enrolment code is unknown, expired or already used",
        )
    device = session.get(Device, claimed[0])
    assert device is not None
    token = new_token(DEVICE_TOKEN_PREFIX)
    device.token_hash = hash_token(secret, token)
    device.token_prefix = public_prefix(token)
    if name:
        device.name = name
    session.add(device)
    session.commit()
    return device, token


def revoke_device(session: Session, device: Device) -> None:
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.enrollment_code_hash = None
        session.add(device)
        session.commit()


def request_wipe(session: Session, device: Device) -> Device:
    """Order the device to erase its data at its next contact (every request with its token
    answers 410 `device_wiped` from now on, until it confirms). Asking again keeps the first
    time. The enrolment code of a device never enrolled is spent too."""
    now = utcnow()
    session.connection().execute(
        update(_DEVICES)  # type: ignore[arg-type]
        .where(
            _DEVICES.c.id == device.id,  # type: ignore[attr-defined]
            _DEVICES.c.wipe_requested_at.is_(None),  # type: ignore[attr-defined]
        )
        .values(wipe_requested_at=now, enrollment_code_hash=None)
    )
    session.commit()
    session.refresh(device)
    return device


def confirm_wipe(session: Session, *, device_id: str, report: WipeReport) -> Device:
    """The device erased its data (`report.reason`) with `report.pending` uploads still queued:
    record it and revoke the device. Confirming again changes nothing (the first confirmation
    stands), so a device whose answer was lost may retry."""
    now = utcnow()
    conn = session.connection()
    table = _DEVICES
    conn.execute(
        update(table)  # type: ignore[arg-type]
        .where(
            table.c.id == device_id,  # type: ignore[attr-defined]
            table.c.wipe_confirmed_at.is_(None),  # type: ignore[attr-defined]
        )
        .values(
            wipe_confirmed_at=now,
            wipe_reason=report.reason.value,
            pending_uploads=report.pending,
            pending_reported_at=now,
            last_seen_at=now,
            enrollment_code_hash=None,
        )
    )
    conn.execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == device_id, table.c.revoked_at.is_(None))  # type: ignore[attr-defined]
        .values(revoked_at=now)
    )
    session.commit()
    device = session.get(Device, device_id, populate_existing=True)
    assert device is not None
    return device


def record_sync(
    session: Session, *, device_id: str, device_time: datetime | None, app_version: str | None
) -> int | None:
    """Remember when a device last synced, its app version and its clock offset (ms, device
    minus server); answers the offset."""
    now = utcnow()
    values: dict[str, object] = {"last_seen_at": now}
    offset = None
    if device_time is not None:
        offset = int((device_time - now).total_seconds() * 1000)
        values["clock_offset_ms"] = offset
    if app_version:
        values["app_version"] = app_version[:64]
    session.connection().execute(
        update(Device.__table__).where(col(Device.id) == device_id).values(**values)  # type: ignore[arg-type]
    )
    return offset
