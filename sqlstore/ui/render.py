"""Turning stored values into what the templates show: message parts, times, JSON,
paging cursors, a checkpoint diff and the feedback chart (inline SVG). No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import ValidationError

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Media types an image block may have to be shown as an image (SVG is not: it can script)."""

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_DATA_URL = re.compile(r"^data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)$")
TOOL_CALL_TYPES = frozenset({"tool_use", "tool_call", "function_call", "toolUse"})
TOOL_RESULT_TYPES = frozenset({"tool_result", "function_call_output", "toolResult"})


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a message as the chat shows it.

    ``kind`` is "text", "image" (``body`` is a data: URL of an allowed image type),
    "tool_call", "tool_result" or "data" (``body`` is indented JSON, shown folded).
    """

    kind: str
    body: str
    label: str = ""


def pretty(value: Any) -> str:
    """Indented JSON for any value; what JSON cannot hold is shown as its ``str``."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    try:
        return orjson.dumps(value, default=str, option=option).decode("utf-8")
    except TypeError:
        return repr(value)


def _image(block: dict[str, Any]) -> str | None:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if media in IMAGE_TYPES and isinstance(data, str) and _BASE64.match(data):
            return f"data:{media};base64,{''.join(data.split())}"
    url = block.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if isinstance(url, str):
        match = _DATA_URL.match(url)
        if match and match.group(1) in IMAGE_TYPES:
            return url
    return None


def _block(block: Any) -> Part:
    if isinstance(block, str):
        return Part("text", block)
    if not isinstance(block, dict):
        return Part("data", pretty(block), "value")
    kind = block.get("type")
    if kind in TOOL_CALL_TYPES:
        name = block.get("name") or block.get("function", {}).get("name") or "tool"
        args = block.get("input", block.get("args", block.get("arguments", {})))
        return Part("tool_call", pretty(args), str(name))
    if kind in TOOL_RESULT_TYPES:
        body = block.get("content", block.get("output", block))
        text = body if isinstance(body, str) else pretty(body)
        return Part("tool_result", text, str(block.get("tool_use_id") or block.get("id") or ""))
    if kind in ("image", "image_url") or "image_url" in block:
        url = _image(block)
        if url is not None:
            return Part("image", url)
    if isinstance(block.get("text"), str) and kind in (None, "text"):
        return Part("text", block["text"])
    return Part("data", pretty(block), str(kind or "block"))


def message_parts(content: Any) -> list[Part]:
    """A message's content (a string, one block or a list of blocks) as parts to show."""
    if isinstance(content, list):
        return [_block(b) for b in content]
    if isinstance(content, dict) and "tool_calls" in content:
        calls = content.get("tool_calls") or []
        text = content.get("content")
        parts = [Part("text", text)] if isinstance(text, str) and text else []
        for call in calls if isinstance(calls, list) else []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            parts.append(Part("tool_call", pretty(fn.get("arguments")), str(fn.get("name"))))
        return parts
    return [_block(content)]


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC ("" for None)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def time_left(ms: int) -> str:
    """A duration in milliseconds as ``2d 3h``, ``4h 10m``, ``5m 2s`` or ``7s``."""
    s = max(0, ms // 1000)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s % 60}s"
    return f"{s}s"


def size(n: int | None) -> str:
    """A byte count for people: ``12.3 MB``."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


def cursor(time: int, item_id: str) -> str:
    """A keyset position for a URL: ``time:id``."""
    return f"{time}:{item_id}"


def parse_cursor(text: str | None) -> tuple[int, str] | None:
    """The (time, id) of a URL's ``before``; None when absent; a ValidationError when bad."""
    if not text:
        return None
    head, sep, tail = text.partition(":")
    if not sep or not head.isdigit() or not tail or len(tail) > 256:
        raise ValidationError("a page position must look like 'time:id'")
    return int(head), tail


@dataclass(frozen=True, slots=True)
class Change:
    """One top-level key of a state that differs from the state before it."""

    key: str
    kind: str  # "added", "removed" or "changed"
    before: str
    after: str


def diff(before: Any, after: Any) -> list[Change]:
    """The keys added, removed or changed between two states (dicts compared key by key;
    anything else compared whole)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before == after:
            return []
        return [Change("(state)", "changed", pretty(before), pretty(after))]
    changes: list[Change] = []
    for key in sorted(set(before) | set(after), key=str):
        if key not in before:
            changes.append(Change(str(key), "added", "", pretty(after[key])))
        elif key not in after:
            changes.append(Change(str(key), "removed", pretty(before[key]), ""))
        elif pretty(before[key]) != pretty(after[key]):
            changes.append(Change(str(key), "changed", pretty(before[key]), pretty(after[key])))
    return changes


@dataclass(slots=True)
class Chart:
    """An inline SVG bar chart drawn on the server: bars with labels and a value axis."""

    title: str
    width: int = 640
    height: int = 180
    bars: list[tuple[str, float, str]] = field(default_factory=list)
    """(label, value from 0 to 5, tooltip) per bar."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One drawn bar: its box, label and tooltip, in SVG units."""

    x: float
    y: float
    w: float
    h: float
    label: str
    tip: str
    fill: str


def bars(chart: Chart) -> list[Bar]:
    """The bars of ``chart`` placed on its canvas (ratings 1-5, 5 at the top)."""
    n = len(chart.bars)
    if not n:
        return []
    plot_h = chart.height - 40
    step = (chart.width - 40) / n
    placed: list[Bar] = []
    for i, (label, value, tip) in enumerate(chart.bars):
        h = plot_h * max(0.0, min(value, 5.0)) / 5
        fill = "#c0392b" if value < 2.5 else "#d68910" if value < 3.5 else "#1e8449"
        placed.append(
            Bar(30 + i * step + step * 0.15, 10 + plot_h - h, step * 0.7, h, label, tip, fill)
        )
    return placed


def rating_chart(title: str, rows: Sequence[tuple[str, int, float]]) -> Chart:
    """A chart of mean ratings from (label, count, mean) rows."""
    return Chart(
        title, bars=[(label, mean, f"{label}: {mean:.2f} from {n}") for label, n, mean in rows]
    )
