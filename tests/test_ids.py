"""Client-side ids: UUIDv7 strings, strictly increasing within a process (no I/O)."""

from __future__ import annotations

import uuid

from sqlstore.ids import new_id, new_ids


def test_ids_are_uuid7_and_strictly_increasing_one_at_a_time_or_in_bulk() -> None:
    made: list[str] = []
    for round_ in range(50):
        made.append(new_id())
        made.extend(new_ids(37))
        made.extend(new_ids(0))
        if round_ % 10 == 0:
            made.extend(new_ids(5000))  # more than one millisecond's 4,096 sequence numbers
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    for text in made[::97]:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
