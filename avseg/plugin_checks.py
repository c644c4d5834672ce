"""What registration can check about a component class without building it or loading a model.

:func:`component_problem` is called by the registry's recorder for every registered class; a
problem makes the plugin a broken-plugin row in ``avseg plugins`` with the one-line reason, and
the other plugins keep working. It catches, at registration, the mistakes that would otherwise
surface only when a pipeline is built or an eval runs: abstract methods left unimplemented (a
tagger without ``vocabulary``), a ``Config`` that is not a :class:`~avseg.components.ComponentConfig`,
a config default that its own field refuses, and class attributes of the wrong shape.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from avseg.components import ClipFilter, Component, ComponentConfig, Filter, Refiner


def _abstract(cls: type[Component]) -> str | None:
    if not inspect.isabstract(cls):
        return None
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    base = next((b.__name__ for b in cls.__mro__[1:] if set(missing) & set(getattr(b, "__abstractmethods__", ()))),
                "its base class")
    return f"does not implement {', '.join(missing)} (abstract in {base})"


def _config_class(cls: type[Component]) -> str | None:
    cfg = getattr(cls, "Config", None)
    if isinstance(cfg, type) and issubclass(cfg, ComponentConfig):
        return None
    what = "a plain pydantic BaseModel" if isinstance(cfg, type) and issubclass(cfg, BaseModel) else repr(cfg)
    return f"its Config is {what}; subclass avseg.components.ComponentConfig"


def _field_error(err: Any) -> str:
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return f"{loc + ': ' if loc else ''}{err.get('msg', 'invalid')} (default {err.get('input')!r})"


def _defaults(cfg: type[ComponentConfig]) -> str | None:
    """Every default validated against its own field (and the config's validators), as pydantic
    does with ``validate_default``; required fields are left out."""
    try:
        check = type("DefaultsCheck", (cfg,), {"model_config": ConfigDict(validate_default=True),
                                                 "__module__": cfg.__module__})
    except Exception as exc:  # a config pydantic cannot even subclass
        return f"its Config cannot be checked: {str(exc).splitlines()[0]}"
    try:
        check()
    except ValidationError as exc:
        bad = [e for e in exc.errors() if e.get("type") != "missing"]
        if bad:
            return f"its Config has an invalid default: {_field_error(bad[0])}"
    except Exception as exc:  # a validator that raises something else on its own defaults
        return f"its Config defaults fail validation: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _attributes(cls: type[Component]) -> str | None:
    """The class attributes every kind relies on, and the ones of filters."""
    requires = getattr(cls, "requires", ())
    if not isinstance(requires, (tuple, list)) or not all(isinstance(r, str) for r in requires):
        return f"'requires' must be a tuple of module names, got {requires!r}"
    extra = getattr(cls, "extra", None)
    if extra is not None and not (isinstance(extra, str) and extra):
        return f"'extra' must be a pip extra name or None, got {extra!r}"
    if not isinstance(getattr(cls, "description", ""), str):
        return "'description' must be a string"
    if not isinstance(getattr(cls, "weights", {}), dict):
        return "'weights' must map variant names to lists of WeightFile"
    if issubclass(cls, Refiner) and cls.refine is Refiner.refine and cls.refine_clip is Refiner.refine_clip:
        return "implements neither refine nor refine_clip"
    if issubclass(cls, Filter):
        if cls.target not in ("tags", "proposals"):
            return f"'target' must be 'tags' or 'proposals', got {cls.target!r}"
        if cls.scope not in ("frame", "clip"):
            return f"'scope' must be 'frame' or 'clip', got {cls.scope!r}"
        if (cls.scope == "clip") != issubclass(cls, ClipFilter):
            return ("a clip-scope filter subclasses avseg.components.ClipFilter (and implements filter_clip)"
                    if cls.scope == "clip" else "a ClipFilter has scope 'clip'")
    return None


def component_problem(kind: str, cls: type[Component]) -> str | None:
    """Why registering ``cls`` as a ``kind`` would break later, in one line; None when it is fine."""
    problem = _abstract(cls) or _config_class(cls) or _attributes(cls) or _defaults(cls.Config)
    if problem:
        return f"{kind} {getattr(cls, 'name', cls.__name__)!r} ({cls.__module__}.{cls.__qualname__}): {problem}"
    return None
