"""The audio-visual tree used by AVIS (BAVS stage two): broad source -> category -> AudioSet leaves.

A tree says which AudioSet tags a visible object category can make, grouped into broad sources
(human, pet, vehicle, ...), so that a segmented object is kept only when the audio agrees with
it. This module is pure data: it loads, validates and prints trees, and resolves detector
labels to categories by name. It imports no model code; the scoring lives in the ``avis`` plugin.

YAML format::

    broad_sources:
      pet:
        dog: ["Dog", "Bark", "Howl", "Growling"]
    aliases:            # optional: other names that mean a category
      dog: ["dog_barking", "hound"]
    background: [...]   # optional: tags that never select anything (default: NON_VISUAL_TAGS)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from avseg.audioset import NON_VISUAL_TAGS, audioset_labels
from avseg.errors import ConfigError, UsageError, did_you_mean
from avseg.labels import normalise_label
from avseg.yamlio import SafeLoader, load_text, read_text

TOP_LEVEL_KEYS = ("broad_sources", "aliases", "background")
DEFAULT_TREE_NAME = "avseg/trees/default.yaml"


def normalize_label(text: str) -> str:
    """How tree names are compared: :func:`avseg.labels.normalise_label` (the one normaliser).

    Detector labels, dataset labels (``playing_violin``, ``emergency-car``) and COCO names
    (``hair drier``) differ mostly in case, ``_``/``-`` and articles, so exact linking compares
    normalised names.
    """
    return normalise_label(text)


class AVTree:
    """A validated-on-demand audio-visual tree.

    Construction accepts any content (unknown AudioSet names, duplicate categories, empty
    branches) so that :meth:`validate` can report every problem at once; lookups use the first
    occurrence of a duplicated category.
    """

    def __init__(
        self,
        broad_sources: Mapping[str, Mapping[str, Sequence[str]]],
        aliases: Mapping[str, Sequence[str]] | None = None,
        background: Sequence[str] | None = None,
        source: str = "<memory>",
    ) -> None:
        self.source = source
        self._branches: list[tuple[str, str, tuple[str, ...]]] = []
        self._broad: dict[str, list[str]] = {}
        self._broad_of: dict[str, str] = {}
        self._leaves: dict[str, tuple[str, ...]] = {}
        for broad, cats in broad_sources.items():
            self._broad[broad] = []
            for cat, leaves in cats.items():
                leaves_t = tuple(leaves)
                self._branches.append((broad, cat, leaves_t))
                if cat not in self._broad_of:
                    self._broad_of[cat] = broad
                    self._leaves[cat] = leaves_t
                    self._broad[broad].append(cat)
        self.aliases: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (aliases or {}).items()}
        #: the tree's own background list, or None when the file gives none
        self.background_list: tuple[str, ...] | None = tuple(background) if background is not None else None
        self._by_leaf: dict[str, list[str]] = {}
        for cat, leaves_t in self._leaves.items():
            for leaf in dict.fromkeys(leaves_t):
                self._by_leaf.setdefault(leaf, []).append(cat)
        # name index for exact linking: category names first, then aliases, then leaves
        self._by_name: dict[str, tuple[str, str]] = {}
        for cat in self._leaves:
            self._by_name.setdefault(normalize_label(cat), (cat, "category"))
        for cat, names in self.aliases.items():
            if cat in self._leaves:
                for a in names:
                    self._by_name.setdefault(normalize_label(a), (cat, "alias"))
        for leaf, owners in self._by_leaf.items():
            self._by_name.setdefault(normalize_label(leaf), (owners[0], "leaf"))

    # ------------------------------------------------------------------ lookups

    @property
    def categories(self) -> list[str]:
        """Every category (sounding source), in file order."""
        return list(self._leaves)

    @property
    def broad_sources(self) -> list[str]:
        return list(self._broad)

    @property
    def background(self) -> frozenset[str]:
        """Tags that never select anything: the file's list, else :data:`NON_VISUAL_TAGS`."""
        return frozenset(self.background_list) if self.background_list is not None else NON_VISUAL_TAGS

    def _category(self, category: str) -> str:
        if category in self._leaves:
            return category
        hit = self._by_name.get(normalize_label(category))
        if hit is not None and hit[1] == "category":
            return hit[0]
        raise UsageError(
            f"unknown AVIS tree category {category!r} in {self.source}" + did_you_mean(category, self._leaves)
        )

    def broad_of(self, category: str) -> str:
        """The broad source a category hangs under."""
        return self._broad_of[self._category(category)]

    def leaves_of(self, category: str) -> list[str]:
        """The AudioSet names a category can make (as written, duplicates removed)."""
        return list(dict.fromkeys(self._leaves[self._category(category)]))

    def categories_in(self, broad: str) -> list[str]:
        if broad not in self._broad:
            raise UsageError(
                f"unknown broad source {broad!r} in {self.source}" + did_you_mean(broad, self._broad)
            )
        return list(self._broad[broad])

    def leaves_of_broad(self, broad: str) -> list[str]:
        """Every leaf under a broad source, once each (so sums do not count shared leaves twice)."""
        out: dict[str, None] = {}
        for cat in self.categories_in(broad):
            out.update(dict.fromkeys(self._leaves[cat]))
        return list(out)

    def categories_of_leaf(self, name: str) -> list[str]:
        """Categories that list an AudioSet name as a leaf (a leaf may belong to several)."""
        return list(self._by_leaf.get(name, []))

    def path(self, category: str) -> str:
        """``broad/category``: how debug output names a node."""
        cat = self._category(category)
        return f"{self._broad_of[cat]}/{cat}"

    def resolve(self, label: str) -> tuple[str, str] | None:
        """Link a label to a category by name alone: ``(category, how)`` or None.

        ``how`` is "category" (the category's own name, compared normalised), "alias", or
        "leaf" (the label is an AudioSet leaf name, as when a detector was prompted with tags;
        a shared leaf goes to the first category in file order).
        """
        return self._by_name.get(normalize_label(label))

    def link_texts(self) -> list[tuple[str, str]]:
        """``(text, category)`` pairs a text-similarity linker compares labels with: names and aliases."""
        out: dict[str, str] = {}
        for cat in self._leaves:
            out.setdefault(normalize_label(cat), cat)
        for cat, names in self.aliases.items():
            if cat in self._leaves:
                for a in names:
                    out.setdefault(normalize_label(a), cat)
        return list(out.items())

    # ------------------------------------------------------------------ validation

    def validate(self, known_names: Iterable[str] | None = None) -> list[str]:
        """Every problem in the tree, one line each; empty when the tree is sound.

        ``known_names`` are the tagger's class names (default: the 527 AudioSet names). A leaf
        that the tagger cannot emit would silently never match, hence the close-match hints.
        """
        known = list(known_names) if known_names is not None else audioset_labels()
        known_set = set(known)
        lower = {k.lower(): k for k in known}
        problems: list[str] = []

        def unknown(name: str, where: str) -> None:
            if name in known_set:
                return
            if name.lower() in lower:
                hint = f" (did you mean {lower[name.lower()]!r}?)"
            else:
                close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                hint = (
                    " (did you mean " + ", ".join(repr(c) for c in close) + "?)"
                    if close
                    else " (no close match)"
                )
            problems.append(f"unknown AudioSet name {name!r} {where}{hint}")

        seen_at: dict[str, list[str]] = {}
        for broad, cat, _ in self._branches:
            seen_at.setdefault(cat, []).append(broad)
        for cat, broads in seen_at.items():
            if len(broads) > 1:
                problems.append(f"category {cat!r} appears more than once: under {', '.join(broads)}")

        norm_seen: dict[str, str] = {}
        for cat in self._leaves:
            n = normalize_label(cat)
            if n in norm_seen and norm_seen[n] != cat:
                problems.append(f"categories {norm_seen[n]!r} and {cat!r} are the same name once normalised")
            norm_seen.setdefault(n, cat)

        for broad, cats in self._broad.items():
            if not cats and not any(b == broad for b, _, _ in self._branches):
                problems.append(f"broad source {broad!r} has no categories")
            if broad in self._leaves:
                problems.append(f"broad source {broad!r} is also a category name; rename one of them")

        background = self.background
        for broad, cat, leaves in self._branches:
            where = f"under {broad}/{cat}"
            if not leaves:
                problems.append(f"category {cat!r} {where} has no AudioSet names")
            counts: dict[str, int] = {}
            for leaf in leaves:
                counts[leaf] = counts.get(leaf, 0) + 1
                if counts[leaf] == 1:
                    unknown(leaf, where)
                    if leaf in background:
                        problems.append(
                            f"{leaf!r} {where} is also a background class, so it can never select anything"
                        )
            problems.extend(f"{leaf!r} is listed {n} times {where}" for leaf, n in counts.items() if n > 1)

        if self.background_list is not None:
            for name in self.background_list:
                unknown(name, "in background")

        alias_owner: dict[str, str] = {}
        for cat, names in self.aliases.items():
            if cat not in self._leaves:
                problems.append(f"aliases: {cat!r} is not a category" + did_you_mean(cat, self._leaves))
                continue
            if not names:
                problems.append(f"aliases: {cat!r} has an empty alias list")
            for a in names:
                n = normalize_label(a)
                other = norm_seen.get(n)
                if other is not None and other != cat:
                    problems.append(f"alias {a!r} of {cat!r} is the name of category {other!r}")
                elif n in alias_owner and alias_owner[n] != cat:
                    problems.append(f"alias {a!r} is given for both {alias_owner[n]!r} and {cat!r}")
                alias_owner.setdefault(n, cat)
        return problems

    # ------------------------------------------------------------------ display

    def _branch_lines(self, cat: str, last: bool, with_broad: bool) -> list[str]:
        lines = [self._broad_of[cat]] if with_broad else []
        aliases = self.aliases.get(cat, ())
        note = f"  (aliases: {', '.join(aliases)})" if aliases else ""
        lines.append(("└── " if last else "├── ") + cat + note)
        pad = "    " if last else "│   "
        leaves = self.leaves_of(cat)
        for j, leaf in enumerate(leaves):
            lines.append(pad + ("└── " if j == len(leaves) - 1 else "├── ") + leaf)
        return lines

    def show(self, name: str) -> str:
        """A text view of the branch a name belongs to: a category, alias, broad source, or AudioSet leaf."""
        if name in self._broad and name not in self._leaves:
            cats = self._broad[name]
            lines = [name]
            for i, cat in enumerate(cats):
                lines += self._branch_lines(cat, i == len(cats) - 1, with_broad=False)
            return "\n".join(lines)
        hit = self.resolve(name)
        if hit is not None and hit[1] in ("category", "alias"):
            cat = hit[0]
            head = [f"{name!r} is an alias of {cat!r}"] if hit[1] == "alias" else []
            return "\n".join(head + self._branch_lines(cat, True, with_broad=True))
        leaf = next((x for x in self._by_leaf if x.lower() == name.strip().lower()), None)
        if leaf is not None:
            paths = ", ".join(self.path(c) for c in self._by_leaf[leaf])
            return f"{leaf!r} is an AudioSet leaf under: {paths}"
        if name in self.background:
            return f"{name!r} is a background class: it never selects anything"
        if name in set(audioset_labels()):
            return f"{name!r} is an AudioSet name this tree does not use: AVIS ignores it"
        choices = [
            *self._leaves,
            *self._broad,
            *(a for v in self.aliases.values() for a in v),
            *self._by_leaf,
        ]
        raise UsageError(
            f"{name!r} is not a category, alias, broad source or leaf of {self.source}"
            + _close(name, choices)
        )

    def to_dict(self) -> dict[str, Any]:
        """The tree as YAML-ready data (first occurrence of duplicated categories)."""
        out: dict[str, Any] = {
            "broad_sources": {b: {c: list(self._leaves[c]) for c in cats} for b, cats in self._broad.items()}
        }
        if self.aliases:
            out["aliases"] = {k: list(v) for k, v in self.aliases.items()}
        if self.background_list is not None:
            out["background"] = list(self.background_list)
        return out

    def __repr__(self) -> str:
        return f"<AVTree {self.source}: {len(self._broad)} broad sources, {len(self._leaves)} categories>"


def _close(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    return " (did you mean " + ", ".join(repr(c) for c in close) + "?)" if close else ""


# ---------------------------------------------------------------------- loading


class _UniqueKeyLoader(SafeLoader):
    """A safe loader (no aliases of containers) that rejects duplicate keys, which plain YAML
    silently overwrites."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            dup = key in seen
            seen.add(key)
        except TypeError:
            continue
        if dup:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _str_list(value: Any, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {what} must be a list of names, got {type(value).__name__}")
    for v in value:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: {what} has {v!r} ({type(v).__name__}); quote it to make it a name")
    return list(value)


def parse_tree(data: Any, source: str = "<memory>") -> AVTree:
    """Build a tree from loaded YAML data, raising a one-line ConfigError on a format error."""
    if not isinstance(data, dict) or "broad_sources" not in data:
        raise ConfigError(f"{source}: expected a mapping with a 'broad_sources' key at the top level")
    extra = [k for k in data if k not in TOP_LEVEL_KEYS]
    if extra:
        raise ConfigError(f"{source}: unknown key {extra[0]!r} (expected {', '.join(TOP_LEVEL_KEYS)})")
    broad_raw = data["broad_sources"]
    if not isinstance(broad_raw, dict):
        raise ConfigError(f"{source}: 'broad_sources' must map broad sources to categories")
    broad: dict[str, dict[str, list[str]]] = {}
    for b, cats in broad_raw.items():
        if not isinstance(b, str):
            raise ConfigError(f"{source}: broad source {b!r} must be a name; quote it")
        if cats is None:
            cats = {}
        if not isinstance(cats, dict):
            raise ConfigError(f"{source}: broad source {b!r} must map categories to lists of AudioSet names")
        broad[b] = {}
        for c, leaves in cats.items():
            if not isinstance(c, str):
                raise ConfigError(f"{source}: category {c!r} under {b!r} must be a name; quote it")
            broad[b][c] = _str_list(leaves, f"{b}/{c}", source)
    aliases_raw = data.get("aliases")
    if aliases_raw is not None and not isinstance(aliases_raw, dict):
        raise ConfigError(f"{source}: 'aliases' must map categories to lists of names")
    aliases: dict[str, list[str]] = {}
    for c, names in (aliases_raw or {}).items():
        aliases[str(c)] = _str_list(names, f"aliases of {c!r}", source)
    background = _str_list(data["background"], "background", source) if "background" in data else None
    return AVTree(broad, aliases, background, source=source)


def _read_yaml(text: str, source: str) -> Any:
    return load_text(text, source, _UniqueKeyLoader)


@lru_cache(maxsize=1)
def _default_tree() -> AVTree:
    text = resources.files("avseg").joinpath("trees", "default.yaml").read_text(encoding="utf-8")
    return parse_tree(_read_yaml(text, DEFAULT_TREE_NAME), DEFAULT_TREE_NAME)


def load_tree(path: str | Path | None = None) -> AVTree:
    """Load a tree file, or the shipped default tree when ``path`` is None (cached)."""
    if path is None:
        return _default_tree()
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"AVIS tree file not found: {p}")
    text = read_text(p, "AVIS tree file")
    return parse_tree(_read_yaml(text, str(p)), str(p))


def validate_tree_file(path: str | Path | None) -> list[str]:
    """Problems in a tree file (the shipped tree when ``path`` is None) against the 527 AudioSet
    names (``avseg tree validate [FILE]``).

    A file that cannot be read or parsed raises :class:`ConfigError` instead.
    """
    return load_tree(path).validate(audioset_labels())


def show_branch(category: str, path: str | Path | None = None) -> str:
    """Text of the branch holding a category, alias, broad source or leaf (``avseg tree show NAME``)."""
    return load_tree(path).show(category)


__all__ = [
    "AVTree",
    "load_tree",
    "normalize_label",
    "parse_tree",
    "show_branch",
    "validate_tree_file",
]
