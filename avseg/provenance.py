"""Where a preset's behaviour comes from: ``paper``, ``authors-code`` or ``extended``.

The rule (docs/reproducing.md): a preset named after a paper pipeline does exactly what the
paper says and, where the paper is silent, what its authors' code does (``paper``); a preset
that follows the authors' released code where it departs from the paper is ``authors-code``;
anything beyond either is ``extended`` and has a different name (``...-plus``) or keeps the extra
behaviour behind an option that is off in the paper preset. A preset without a ``provenance:`` key
(a plugin's, say) claims no fidelity and counts as ``extended``.
"""

from __future__ import annotations

from typing import Any

from avseg.errors import ConfigError, did_you_mean

PROVENANCES = ("paper", "authors-code", "extended")
DEFAULT_PROVENANCE = "extended"


def check_provenance(value: Any) -> str:
    """The validated ``provenance:`` value of a spec (one-line ConfigError otherwise)."""
    if value not in PROVENANCES:
        raise ConfigError(
            f"provenance: {value!r} is not one of {', '.join(PROVENANCES)}{did_you_mean(str(value), PROVENANCES)}"
        )
    return str(value)


def provenance_of(spec: dict[str, Any]) -> str:
    """A spec's provenance; ``extended`` when it does not say."""
    value = spec.get("provenance")
    return DEFAULT_PROVENANCE if value is None else check_provenance(value)
