"""Who is calling, and the audit log (administrators; never a secret)."""
from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Query, Request

from adobot.control_room.deps import Administrator, Caller, State, run_as
from adobot.control_room.schemas import AuditEntries, Me, errors

router = APIRouter()


@router.get("/me", summary="Who the token belongs to", tags=["tokens"],
            responses=errors(inputs=False))
async def me(token: Caller) -> Me:
    return Me.model_validate({"name": token.name, "role": token.role,
                              "expires_at": token.expires_at})


@router.get("/audit", summary="The audit log, newest last (administrators; never a secret)",
            tags=["audit"], responses=errors(403, 422, 500), response_model_exclude_none=True)
async def read_audit(request: Request, room: State, token: Administrator,
                     limit: int = Query(100, ge=1, le=10000), connection: Optional[str] = None,
                     event: Optional[str] = None) -> AuditEntries:
    entries = await run_as(request, "read", room.audit.read, limit,
                              connection=connection, event=event)
    return AuditEntries.model_validate({"count": len(entries), "entries": entries})
