"""Bulk attendee import: `POST /v1/events/{id}/attendees/import` with a CSV or JSON array body."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sync_server.api.deps import EventWriteDep, SessionDep, Writer
from sync_server.services.import_upload import parse_upload, upload_format
from sync_server.services.imports import ImportOptions, ImportResult, import_attendees

__all__ = ["router"]

router = APIRouter(prefix="/v1/events/{event_id}", tags=["attendees"])


class RowErrorPublic(BaseModel):
    row: int = Field(description="The data row, 1-based (the header is not a row)")
    line: int | None = Field(
        description="The first physical line of the record in a CSV file (the header is line "
        "1; blank lines count); null for JSON"
    )
    field: str = Field(description="The column (or `row` for the record as a whole)")
    message: str


class ImportResultPublic(BaseModel):
    object: str = "import_result"
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowErrorPublic]
    warnings: list[str] = Field(
        description="What the import did that the file may not expect: columns ignored or kept "
        "as custom fields, rows that cannot be matched again on a re-import, codes changed"
    )

    @classmethod
    def of(cls, result: ImportResult) -> ImportResultPublic:
        return cls.model_validate(result.public())


async def read_upload(request: Request, _: Writer) -> bytes:
    """The raw body, read only after the caller is known and the content type is acceptable."""
    upload_format(request.headers.get("content-type"))
    return await request.body()


Upload = Annotated[bytes, Depends(read_upload)]

_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {"type": "string", "format": "binary"},
            "example": "first_name,last_name,email,ticket_type,tags,custom.seat\n"
            "Ana,Ruiz,ana@example.com,vip,press;speaker,A12\n",
        },
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    },
}


@router.post(
    "/attendees/import",
    operation_id="import_attendees",
    openapi_extra={"requestBody": _BODY},
    responses={
        413: {"description": "More than 200,000 rows"},
        415: {"description": "Neither CSV nor JSON"},
        422: {"description": "Empty or unreadable body; any bad row with atomic"},
    },
)
def import_(
    body: Upload, event: EventWriteDep, session: SessionDep, request: Request, atomic: bool = False
) -> ImportResultPublic:
    """Upsert attendees by email or code: CSV (header row; `tags` split on `;` or `|`;
    `custom.<key>` columns) or a JSON array of attendee objects. Bad rows are reported in
    `errors` (1-based data rows) and skipped, unless `atomic=true`: then nothing is written.
    """
    upload = parse_upload(body, request.headers.get("content-type"))
    result = import_attendees(
        session,
        event=event,
        rows=upload.rows,
        secret=request.app.state.secret,
        options=ImportOptions(atomic=atomic),
    )
    result.warnings[:0] = upload.warnings
    return ImportResultPublic.of(result)
