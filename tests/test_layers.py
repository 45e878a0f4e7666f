"""Every import points down: errors, clock < values, ids < drivers < domains < store <
compat < ui < cli
(domains reach the database through the executor protocol, never through Store)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sqlstore"

LAYER = {
    "errors": 0,
    "clock": 0,
    "values": 1,
    "ids": 1,
    "migrations": 1,
    "drivers": 2,
    "domains": 3,
    "store": 4,
    "compat": 5,
    "ui": 6,
    "cli": 7,
}
"""A module may import only from a lower layer (or its own package). ``store`` hosts the
domains as lazily built properties, so it sits above them."""


def _layer_of(parts: list[str]) -> int | None:
    return LAYER.get(parts[0]) if parts else None


def test_every_import_points_down() -> None:
    wrong: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("").parts
        mine = _layer_of(list(rel))
        if mine is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = list(rel[: len(rel) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            if target and target[0] == rel[0]:
                continue  # within its own package
            theirs = _layer_of(target)
            if theirs is not None and theirs >= mine:
                wrong.append(f"{'/'.join(rel)} imports {'.'.join(target)}")
    assert wrong == []


def test_domain_api_classes_are_named_item_store_and_keep_their_older_names() -> None:
    from sqlstore.domains import approvals, checkpoints, conversations, feedback, teams, threads

    assert threads.Threads is threads.ThreadStore
    assert conversations.Conversations is conversations.ConversationStore
    assert approvals.Approvals is approvals.ApprovalStore
    assert checkpoints.Checkpoints is checkpoints.CheckpointStore
    names = [
        threads.ThreadStore,
        conversations.ConversationStore,
        approvals.ApprovalStore,
        checkpoints.CheckpointStore,
        feedback.FeedbackStore,
        teams.TeamStore,
    ]
    assert all(c.__name__.endswith("Store") for c in names)
