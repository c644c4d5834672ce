"""The model lifecycle every model plugin goes through: which weights, built once, loaded strictly.

1. :func:`resolve_weights`: the runtime's weights mode ("tiny", "random", "pretrained") and, for
   "pretrained", each declared file located (explicit ``--set`` path, ``$AVSEG_WEIGHTS_DIR``, the
   Hugging Face cache, torch hub's dir: :func:`avseg.weights.locate`), or a one-line
   :class:`~avseg.errors.WeightsMissing`. The result, :class:`ModelWeights`, says what run.json
   records (:meth:`ModelWeights.used`), so no plugin writes ``weights_used`` by hand.
   :class:`ModelComponent` (a base of each bundled model component) keeps it for run.json.
2. :func:`shared_model`: built once per process under one key made of (model, variant, weights
   mode, seed, files, device, dtype), so two components that load the same model share it and
   two that differ in any of these never do.
3. :func:`build_model`: the one tiny / random / pretrained dispatch.
4. :func:`load_checkpoint`: a state dict into a torch module, strict unless the caller names the
   keys a checkpoint may lack (and why), with a one-line report of what does not fit.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from avseg.components import Component
from avseg.errors import AvsegError
from avseg.weights import WeightFile, require

if TYPE_CHECKING:
    from avseg.runtime import Runtime

T = TypeVar("T")

WEIGHTS_MODES = ("tiny", "random", "pretrained")


@dataclass(frozen=True)
class ModelWeights:
    """What a model is built from: the mode, the seed of random weights, and the files found for
    a pretrained model (declared file name -> path, in the order they were declared)."""

    mode: str
    seed: int
    files: tuple[tuple[str, Path], ...] = field(default=())

    @property
    def pretrained(self) -> bool:
        return self.mode == "pretrained"

    @property
    def path(self) -> Path | None:
        """The first (usually only) file: the checkpoint; None for random weights."""
        return self.files[0][1] if self.files else None

    def file(self, index: int) -> Path:
        return self.files[index][1]

    def used(self) -> str | dict[str, str]:
        """What run.json records: the mode for random weights, else each file's path by name."""
        return {name: str(path) for name, path in self.files} if self.files else self.mode

    def tag(self) -> str:
        """A short path-safe name of these weights: ``<mode>-s<seed>``, or the checkpoint's file
        name plus a hash of its resolved path (for memo namespaces)."""
        if self.path is None:
            return f"{self.mode}-s{self.seed}"
        digest = hashlib.blake2b(str(self.path.resolve()).encode(), digest_size=4).hexdigest()
        return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', self.path.name)}-{digest}"


def resolve_weights(who: str, runtime: Runtime, variant: str | None, files: Sequence[WeightFile],
                    explicit: Sequence[str | None] = (), mode: str | None = None) -> ModelWeights:
    """The weights ``who`` ("proposer 'owod'") builds from. For "pretrained", each of ``files`` is
    located (``explicit[i]``, when given, is the user's path for ``files[i]`` and must exist);
    a file found nowhere raises :class:`~avseg.errors.WeightsMissing` naming where it looked.

    ``mode`` defaults to the runtime's (a component passes its own ``weights_mode``, read once).
    """
    mode = mode or runtime.weights_mode
    if mode not in WEIGHTS_MODES:
        raise ValueError(f"weights mode {mode!r} is not one of {WEIGHTS_MODES}")
    if mode != "pretrained":
        return ModelWeights(mode, runtime.seed)
    found = []
    for i, wf in enumerate(files):
        given = explicit[i] if i < len(explicit) else None
        found.append((wf.filename, require(who, variant, wf, explicit=given)))
    return ModelWeights(mode, runtime.seed, tuple(found))


def share_key(model: str, variant: str | None, weights: ModelWeights, runtime: Runtime, *extra: object) -> str:
    """The one key a built model is shared under: (model, variant, weights mode, seed, files,
    device, dtype), plus ``extra`` (what else the build depends on: image or video, a config file)."""
    seed = "-" if weights.files else str(weights.seed)
    files = ",".join(str(p) for _, p in weights.files) or "-"
    device, dtype = runtime.torch_device(), runtime.torch_dtype()
    parts = [model, variant or "-", weights.mode, f"seed={seed}", files, str(device), str(dtype), *map(str, extra)]
    return ":".join(parts)


def shared_model(runtime: Runtime, model: str, variant: str | None, weights: ModelWeights,
                 build: Callable[[], T], *extra: object) -> T:
    """``build()`` once per process under :func:`share_key` (e.g. SAM behind both sam and sam-grid)."""
    return runtime.share(share_key(model, variant, weights, runtime, *extra), build)


def build_model(weights: ModelWeights, *, tiny: Callable[[], T], random: Callable[[], T],
                pretrained: Callable[[ModelWeights], T]) -> T:
    """The one tiny / random / pretrained dispatch: small seeded random weights, the real sizes
    with seeded random weights (``--random-init``: speed only), or the files found."""
    if weights.mode == "tiny":
        return tiny()
    if weights.mode == "random":
        return random()
    return pretrained(weights)


class ModelComponent(Component):
    """Base of the components that build a model (mixed in before the kind's base class:
    ``class OwodProposer(ModelComponent, Proposer)``): :meth:`resolve_weights` records the
    weights once, and :meth:`weights_used` reports them, the same way for every plugin."""

    model_weights: ModelWeights | None = None

    def resolve_weights(self, variant: str | None, files: Sequence[WeightFile],
                        explicit: Sequence[str | None] = ()) -> ModelWeights:
        """:func:`resolve_weights` in this component's weights mode; recorded for run.json."""
        self.model_weights = resolve_weights(f"{self.kind} '{self.name}'", self.runtime, variant, files, explicit, self.weights_mode)
        return self.model_weights

    def weights_used(self) -> str | dict[str, str]:
        return "none" if self.model_weights is None else self.model_weights.used()


class CheckpointMismatch(AvsegError):
    """A checkpoint whose keys or shapes do not fit the model it is loaded into."""


def mismatch_report(source: str, missing: Sequence[str], unexpected: Sequence[str], expected: str | None = None) -> str:
    """``<source> does not fit the model: 3 missing keys (a, b, c), 1 unexpected (d)``: one line
    (``<source> is not <expected>: ...`` when the caller names what the checkpoint should be)."""
    def some(keys: Sequence[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key{'s' * (len(missing) != 1)} ({some(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({some(unexpected)})")
    return f"{_misfit(source, expected)}: {', '.join(parts)}"


def _misfit(source: str, expected: str | None) -> str:
    return f"{source} is not {expected}" if expected else f"{source} does not fit the model"


def load_checkpoint(model: Any, state: Mapping[str, Any], source: str, *,
                    may_lack: Callable[[str], bool] | None = None,
                    may_carry: Callable[[str], bool] | None = None, expected: str | None = None) -> None:
    """Load ``state`` into the torch module ``model``: every key of each must be in the other
    (strict), except the model keys ``may_lack`` accepts as absent from the checkpoint and the
    checkpoint keys ``may_carry`` accepts as unused. Each exception is the caller's, named
    where it is used with the reason. A shape mismatch or any other misfit raises
    :class:`CheckpointMismatch` in one line starting with ``source`` (and saying it is not
    ``expected``, "an ImageBind checkpoint", when given).
    """
    try:
        result = model.load_state_dict(dict(state), strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        lines = str(exc).splitlines() or [type(exc).__name__]
        first = next((ln.strip() for ln in lines if "size mismatch" in ln), lines[0])
        raise CheckpointMismatch(f"{_misfit(source, expected)}: {first[:200]}") from None
    missing = [k for k in result.missing_keys if not (may_lack and may_lack(k))]
    unexpected = [k for k in result.unexpected_keys if not (may_carry and may_carry(k))]
    if missing or unexpected:
        raise CheckpointMismatch(mismatch_report(source, missing, unexpected, expected))


__all__ = ["WEIGHTS_MODES", "CheckpointMismatch", "ModelComponent", "ModelWeights", "build_model", "load_checkpoint",
           "mismatch_report", "resolve_weights", "share_key", "shared_model"]
