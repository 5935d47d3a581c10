"""Bulk attendee import: `POST /v1/events/{id}/attendees/import` with a CSV or JSON array body."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from sync_server.api.deps import EventWriteDep, SessionDep, Writer
from sync_server.services.import_upload import parse_upload, rejected_rows_csv, upload_format
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
    rejected_csv: str | None = Field(
        default=None,
        description="With `rejected=true` and a CSV upload with bad rows: the header and every "
        "rejected record as it was, with an `import_errors` column saying why (fix them and "
        "import this file again); null otherwise",
    )

    @classmethod
    def of(cls, result: ImportResult, rejected_csv: str | None = None) -> ImportResultPublic:
        return cls.model_validate({**result.public(), "rejected_csv": rejected_csv})


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
    body: Upload,
    event: EventWriteDep,
    session: SessionDep,
    request: Request,
    atomic: bool = False,
    rejected: Annotated[
        bool, Query(description="Answer the CSV's rejected rows in `rejected_csv`")
    ] = False,
) -> ImportResultPublic:
    """Upsert attendees by email or code: CSV (header row; `tags` split on `;` or `|`;
    `custom.<key>` columns) or a JSON array of attendee objects. Bad rows are reported in
    `errors` (by data row and file line, with the column) and skipped, unless `atomic=true`:
    then nothing is written. With `rejected=true` a CSV's bad rows come back whole in
    `rejected_csv`, ready to fix and import again. Needs `write`.
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
    bad = None
    if rejected and upload.csv_text is not None and result.errors:
        every = [{"row": e.row, "field": e.field, "message": e.message} for e in result.errors]
        bad = rejected_rows_csv(upload.csv_text, every)
    return ImportResultPublic.of(result, bad)
