"""Devices: enrolment codes and pairing URIs for admins, the one-time enrolment for scanners,
listing, revocation and remote wipe."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import select

from sync_server.api.deps import Admin, SessionDep, owned
from sync_server.api.pagination import Page, paginate
from sync_server.models import Device
from sync_server.models.base import Input
from sync_server.services.devices import (
    create_enrolment,
    enroll,
    request_wipe,
    revoke_device,
)

router = APIRouter(prefix="/v1/devices", tags=["devices"])


class DeviceCreate(Input):
    name: str = Field(min_length=1, max_length=200)


class EnrollRequest(Input):
    code: str = Field(min_length=4, max_length=64)
    name: str | None = Field(default=None, max_length=200)


class DevicePublic(BaseModel):
    object: str = "device"
    id: str
    name: str
    status: str
    enrollment_expires_at: datetime | None
    enrolled_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None
    app_version: str | None
    clock_offset_ms: int | None
    wipe_requested_at: datetime | None
    wipe_confirmed_at: datetime | None
    wipe_reason: str | None
    pending_uploads: int | None
    pending_reported_at: datetime | None
    created_at: datetime


class DeviceEnrolment(DevicePublic):
    enrollment_code: str
    pairing_uri: str


class EnrollResult(BaseModel):
    device_id: str
    device_token: str
    organization_id: str


def device_public(device: Device) -> DevicePublic:
    status = "revoked" if device.revoked_at else "active" if device.enrolled_at else "pending"
    return DevicePublic.model_validate({**device.model_dump(), "status": status})


def _server_url(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return str(configured or request.base_url).rstrip("/")


@router.post("", status_code=201, operation_id="create_device")
def create(
    body: DeviceCreate, principal: Admin, session: SessionDep, request: Request
) -> DeviceEnrolment:
    """An enrolment: a one-time code (valid 24 h) and a `doorcheck://pair` URI to show as QR."""
    enrolment = create_enrolment(
        session,
        organization_id=principal.organization_id,
        name=body.name,
        server_url=_server_url(request),
        secret=request.app.state.secret,
    )
    return DeviceEnrolment(
        **device_public(enrolment.device).model_dump(),
        enrollment_code=enrolment.code,
        pairing_uri=enrolment.pairing_uri,
    )


@router.post("/enroll", operation_id="enroll_device")
def enroll_device(body: EnrollRequest, session: SessionDep, request: Request) -> EnrollResult:
    """Trade an enrolment code for a device token (no auth; a code works once)."""
    limiter = request.app.state.enroll_limiter
    client = request.client.host if request.client else "unknown"
    _, remaining, reset = limiter.hit(f"enroll:{client}")
    if remaining < 0:
        from sync_server.errors import ApiError

        raise ApiError(
            429, "rate_limited", "Too many enrolment attempts", headers={"Retry-After": str(reset)}
        )
    device, token = enroll(session, code=body.code, name=body.name, secret=request.app.state.secret)
    return EnrollResult(
        device_id=device.id, device_token=token, organization_id=device.organization_id
    )


@router.get("", operation_id="list_devices")
def list_devices(
    principal: Admin, session: SessionDep, limit: int | None = None, cursor: str | None = None
) -> Page[DevicePublic]:
    query = select(Device).where(Device.organization_id == principal.organization_id)
    return paginate(session, query, Device, limit=limit, cursor=cursor, render=device_public)


@router.delete("/{device_id}", status_code=204, operation_id="revoke_device")
def revoke(device_id: str, principal: Admin, session: SessionDep) -> Response:
    revoke_device(session, owned(session, principal, Device, device_id, "device"))
    return Response(status_code=204)


@router.get("/{device_id}", operation_id="get_device")
def get(device_id: str, principal: Admin, session: SessionDep) -> DevicePublic:
    return device_public(owned(session, principal, Device, device_id, "device"))


@router.post("/{device_id}/wipe", status_code=202, operation_id="wipe_device")
def wipe(device_id: str, principal: Admin, session: SessionDep) -> DevicePublic:
    """Order the device to erase its data at its next contact: from now on its token answers
    410 `device_wiped` everywhere but `POST /v1/sync/wiped`, where the device confirms. Asking
    again keeps the first `wipe_requested_at`."""
    device = owned(session, principal, Device, device_id, "device")
    return device_public(request_wipe(session, device))
