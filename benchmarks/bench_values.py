"""Value-check benchmark: what sqlstore's one rule for values costs beside plain orjson,
and how fast a YAML alias bomb is refused.

Prints ``name value unit`` lines. Run: ``.venv/bin/python benchmarks/bench_values.py``.
No database: these are the checks that run before any I/O.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from sqlstore.domains.team_files import parse_config  # noqa: E402
from sqlstore.errors import ValidationError  # noqa: E402
from sqlstore.values import check_args, to_json  # noqa: E402
from tests.test_hostile_inputs import ALIAS_BOMB  # noqa: E402

TEXT = "Hello, how can I help you today? " * 4
BLOCKS = [
    {"text": TEXT},
    {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x", "n": 3, "f": 0.5}}},
]
METADATA = {"source": "chat", "score": 0.93, "tags": ["a", "b"]}
ARGS = ("0193-id", "thread-1", 3, "user", '{"a":1}', "{}", None, 1_700_000_000_000)


def per_call_us(fn: Callable[[], Any], n: int = 50_000) -> float:
    """Median microseconds per call over five runs of ``n`` calls."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.2f} {unit}", flush=True)


def main() -> None:
    values: list[tuple[str, Any]] = [("text", TEXT), ("blocks", BLOCKS), ("metadata", METADATA)]
    for name, value in values:
        report(f"orjson_dumps_{name}", per_call_us(lambda: orjson.dumps(value)), "us")  # noqa: B023
        report(f"to_json_{name}", per_call_us(lambda: to_json(value)), "us")  # noqa: B023
    report("check_args_8_values", per_call_us(lambda: check_args(ARGS)), "us")
    tracemalloc.start()
    start = time.perf_counter()
    with contextlib.suppress(ValidationError):
        parse_config(ALIAS_BOMB, "yaml")
    elapsed = (time.perf_counter() - start) * 1000
    peak = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    report(f"yaml_alias_bomb_{len(ALIAS_BOMB)}_bytes_refused", elapsed, "ms")
    report("yaml_alias_bomb_peak_memory", peak, "KiB")


if __name__ == "__main__":
    main()
