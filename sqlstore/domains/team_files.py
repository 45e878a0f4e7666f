"""Team config files: read JSON / YAML into a dict, write a dict back (no database I/O).

YAML needs pyyaml (the ``yaml`` extra); it is imported only when a YAML file is used.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from ..errors import ConfigurationError, ValidationError
from ..values import MAX_JSON_BYTES
from .team_models import config_dict

SUFFIXES = (".json", ".yaml", ".yml")
"""File name endings a team config may have."""

FORMATS = ("json", "yaml")
"""Export formats."""


MAX_FILE_BYTES = 4 * MAX_JSON_BYTES
"""The largest team file or config text read (YAML may be wordier than its JSON); the
config itself must still fit in MAX_JSON_BYTES once stored as JSON."""


def _yaml() -> ModuleType:
    try:
        import yaml
    except ImportError:  # pragma: no cover - the dev environment has pyyaml
        raise ConfigurationError(
            "YAML team files need pyyaml: pip install 'sqlstore[yaml]'"
        ) from None
    return yaml


_loader: Any = None


def _no_alias_loader() -> Any:
    """pyyaml's SafeLoader, refusing aliases (``*name``, ``<<: *name``) as it meets them:
    a few hundred bytes of nested aliases expand to gigabytes, while a config without them
    takes memory in proportion to its text."""
    global _loader
    if _loader is None:
        yaml = _yaml()

        class NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
            def compose_node(self, parent: Any, index: Any) -> Any:
                if self.check_event(yaml.AliasEvent):
                    anchor = self.peek_event().anchor
                    raise ValidationError(
                        f"YAML aliases (*{anchor}) are not accepted in a team config; "
                        "write the value out"
                    )
                return super().compose_node(parent, index)

        _loader = NoAliasLoader
    return _loader


def parse_config(text: str | bytes, fmt: str, what: str = "config") -> dict[str, Any]:
    """A config dict from JSON or YAML text; malformed or oversized text, and YAML aliases,
    are a ValidationError."""
    if len(text) > MAX_FILE_BYTES:
        raise ValidationError(f"{what}: {len(text)} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        if fmt == "json":
            value = orjson.loads(text)
        else:
            yaml = _yaml()
            try:
                value = yaml.load(text, Loader=_no_alias_loader())  # a SafeLoader
            except ValidationError as exc:
                raise ValidationError(f"{what}: {exc}") from None
            except yaml.YAMLError as exc:
                raise ValidationError(f"{what}: invalid YAML: {exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"{what}: invalid JSON: {exc}") from None
    return config_dict(value, what)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The config in a .json, .yaml or .yml file (at most MAX_FILE_BYTES)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValidationError(f"{p}: a team file must end in one of {list(SUFFIXES)}")
    try:
        with p.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # never more than the limit in memory
    except OSError as exc:
        raise ValidationError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    return parse_config(data, "json" if suffix == ".json" else "yaml", str(p))


def config_source(source: Any) -> dict[str, Any]:
    """A config from what ``import_team`` accepts: a dict (or pydantic model), a path, or
    JSON text (a string starting with ``{``)."""
    if isinstance(source, Path):
        return load_config_file(source)
    if isinstance(source, str):
        if source.lstrip().startswith("{"):
            return parse_config(source, "json", "config text")
        return load_config_file(source)
    return config_dict(source)


def team_files(directory: str | Path) -> list[Path]:
    """The team files directly in ``directory`` (not below), sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise ValidationError(f"{d} is not a directory")
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def dump_config(config: dict[str, Any], fmt: str) -> str:
    """The config as JSON (indented, keys in stored order) or YAML text."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; allowed: {list(FORMATS)}")
    if fmt == "json":
        return orjson.dumps(config, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
    text: str = _yaml().safe_dump(config, sort_keys=False, allow_unicode=True)
    return text
