"""What the UI changes, each through the domain API agents use: an approval decided, a
team config imported from an upload."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

from ..domains.team_files import parse_config
from ..errors import ConflictError, ValidationError

if TYPE_CHECKING:
    from ..domains.approvals import Approval
    from ..domains.team_models import Response
    from ..store import Store

DECISIONS = ("approved", "rejected")
MAX_UPLOAD_BYTES = 5_000_000


def decision_message_id(approval_id: str) -> str:
    """The id of the message that records an approval's decision: one per approval, so a
    retried or repeated decision stores nothing twice."""
    return f"{approval_id}:decision"


async def decide(store: Store, approval_id: str, decision: str) -> Approval | None:
    """Approve or reject a pending approval; the approval decided, or None when it is gone
    (decided already, deleted or expired).

    The decision is appended to the approval's thread (when it has one) as a ``user``
    message whose metadata carries ``approval_id``, ``node`` and ``decision`` (the agent
    resumes from it), then the approval is deleted, which takes it off the pending list.
    """
    if decision not in DECISIONS:
        raise ValidationError(f"decision must be one of {list(DECISIONS)}")
    approval = await store.approvals.get(approval_id)
    if approval is None:
        return None
    if approval.thread_id is not None:
        text = f"{decision.capitalize()}: {approval.node or 'approval'} ({approval.id})"
        meta: dict[str, Any] = {
            "approval_id": approval.id,
            "node": approval.node,
            "decision": decision,
            "source": "sqlstore ui",
        }
        # A ConflictError means it was decided before (a retried request): that stands.
        with suppress(ConflictError):
            await store.threads.add_message(
                approval.thread_id,
                "user",
                [{"type": "text", "text": text}],
                metadata=meta,
                message_id=decision_message_id(approval.id),
            )
    await store.approvals.delete(approval.id)
    return approval


async def import_upload(
    store: Store, filename: str, data: bytes, user_id: str, dedupe: bool
) -> Response:
    """Import one uploaded team file (.json, .yaml or .yml) for ``user_id``; with
    ``dedupe`` an identical config the user already has is answered instead."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(f"a team file may hold at most {MAX_UPLOAD_BYTES} bytes")
    name = filename.lower()
    if name.endswith(".json"):
        fmt = "json"
    elif name.endswith((".yaml", ".yml")):
        fmt = "yaml"
    else:
        raise ValidationError("a team file must end in .json, .yaml or .yml")
    config = parse_config(data, fmt, filename)
    return await store.teams.import_team(config, user_id, check_exists=dedupe)
