"""LibSQLSaver: LangGraph's conformance suite, a real graph with interrupt/resume across a
restart, time travel, and the saver's own behaviour, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from sqlstore.compat.langgraph import LibSQLSaver

# -- LangGraph's conformance suite -------------------------------------------------------


async def test_conformance_suite_full(db_url: str) -> None:
    @checkpointer_test(name="LibSQLSaver")
    async def factory() -> AsyncIterator[LibSQLSaver]:
        async with LibSQLSaver.from_url(db_url) as saver:
            yield saver

    report = await validate(factory)
    report.print_report()
    expected = {c.value for c in ALL_CAPABILITIES}
    assert set(report.results) == expected
    for name, result in report.results.items():
        assert result.detected, f"{name} not detected"
        assert result.tests_skipped == 0, f"{name} skipped tests"
        assert result.tests_failed == 0, f"{name} failed: {result.failures}"
        assert result.passed is True and result.tests_passed > 0, name
    assert report.passed_all_base() and report.passed_all()
    assert report.conformance_level() == "FULL"
    counts = {name: r.tests_passed for name, r in report.results.items()}
    assert sum(counts.values()) >= 58 + 23, counts
