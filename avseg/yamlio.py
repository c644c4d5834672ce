"""Safe YAML reading for every file a user hands us (pipelines, grids, trees).

``yaml.safe_load`` still expands aliases: a 450-byte "billion laughs" file whose anchors
reference each other grows to gigabytes. :class:`SafeLoader` refuses any alias to a mapping or
a list (aliases to plain scalars cost nothing and stay allowed) and refuses a mapping key given twice
or one that is not a string, and :func:`load_file` refuses
files that are not UTF-8 text, each as one :class:`~avseg.errors.ConfigError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from avseg.errors import ConfigError

#: user YAML files larger than this are refused before parsing (pipelines and grids are small)
MAX_YAML_BYTES = 5_000_000


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases (``*name``) to mappings and sequences."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            node = self.anchors.get(event.anchor)
            if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} refers to a mapping or list; aliases of containers "
                    "are not allowed (write the values out)", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Refuse a key given twice (YAML would silently keep the last) and a key that is not a
        string (``1:``, ``yes:``, ``null:``): avseg's files only have names as keys."""
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} ({type(key).__name__}) is not a name; quote it if it is "
                        "meant as text", key_node.start_mark)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (first on line {seen[key] + 1}); "
                        "keep one", key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _error(source: str, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return ConfigError(f"{source}: invalid YAML{at}: {' '.join(str(exc.problem or exc).split())}")
    return ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}")


def load_text(text: str, source: str, loader: type[SafeLoader] = SafeLoader) -> Any:
    """Parse YAML text; errors are one line naming ``source``."""
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _error(source, exc) from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """A user file's text: must exist, be at most :data:`MAX_YAML_BYTES` and be UTF-8."""
    p = Path(path)
    try:
        data = p.read_bytes() if p.stat().st_size <= MAX_YAML_BYTES else None
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {p} is a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if data is None:
        raise ConfigError(f"{what} {p} is larger than {MAX_YAML_BYTES // 1_000_000} MB; is it the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {p} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8") from None


def load_file(path: str | Path, what: str = "file", loader: type[SafeLoader] = SafeLoader) -> Any:
    """Read and parse a user YAML file with :class:`SafeLoader`; every failure is one line naming it."""
    return load_text(read_text(path, what), str(path), loader)
