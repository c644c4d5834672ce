"""``mmdet``: any MMDetection 3.x detector or instance segmenter as a proposer.

The model runs exactly as mmdet's own ``DetInferencer`` runs it: the config's test pipeline
(with its ``LoadImageFromFile`` swapped for ``mmdet.InferencerLoader`` and ``img_id`` dropped
from the packed meta keys), ``pseudo_collate`` batches and ``model.test_step``. The documented
conversion from mmdet's ``DetDataSample.pred_instances`` to :class:`avseg.types.Proposals`:

* frames are RGB; mmdet expects OpenCV's BGR, so each frame is flipped to BGR first;
* ``bboxes`` are already xyxy in pixels of the original frame (mmdet rescales); models that
  give masks but no boxes (SOLO-style, all-zero boxes) get boxes from the masks, as
  ``DetInferencer.pred2dict`` does (``mmdet.structures.mask.mask2bbox``);
* ``labels`` (class indices) become names from ``model.dataset_meta['classes']``, which comes
  from the checkpoint's ``meta`` (``dataset_meta.classes`` or mmdet 2.x ``CLASSES``), else COCO;
* instances with ``score > score_threshold`` are kept (``DetInferencer``'s ``pred_score_thr``
  rule), sorted by score (stable), at most ``top_k``;
* ``masks`` (bool, at the frame's size) are passed on when the model has them and ``masks`` is
  not False.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.errors import AvsegError, ConfigError, DependencyMissing, WeightsMissing, did_you_mean
from avseg.models import ModelComponent, ModelWeights, shared_model
from avseg.models import build_model as dispatch
from avseg.models import load_checkpoint as load_strict
from avseg.runtime import Runtime
from avseg.types import Image, Proposals
from avseg.vocab import COCO_CLASSES
from avseg.weights import WeightFile, load_state_dict

DEFAULT_CONFIG = "mask-rcnn_r50_fpn_1x_coco"

#: checkpoints declared for bundled config names (URLs from mmdet 3.3.0's metafile.yml files;
#: the hex suffix of each file name is the start of its sha256)
KNOWN_WEIGHTS: dict[str, WeightFile] = {
    "mask-rcnn_r50_fpn_1x_coco": WeightFile(
        "mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth",
        url="https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/"
        "mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth",
        sha256="d4b0c5d6",
        licence="Apache-2.0",
    ),
    "rtmdet-ins_tiny_8xb32-300e_coco": WeightFile(
        "rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth",
        url="https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet-ins_tiny_8xb32-300e_coco/"
        "rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth",
        sha256="ec670f7e",
        licence="Apache-2.0",
    ),
}

#: config-name fragments of mmdet's instance-segmentation families (models that output masks)
MASK_NAME_HINTS = (
    "mask", "-ins", "_ins", "solo", "condinst", "boxinst", "queryinst", "htc", "yolact", "scnet",
    "point-rend", "point_rend", "ms-rcnn", "ms_rcnn", "sparseinst", "maskformer", "mask2former",
)  # fmt: skip

_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*$")


# --------------------------------------------------------------------------- config resolution


def _is_path(value: str) -> bool:
    return value.endswith(".py") or "/" in value or value.startswith("~")


def config_name(value: str) -> str:
    """The model name a ``config`` value stands for: a bundled name, or a file's stem."""
    return Path(value).stem if _is_path(value) else value


def name_gives_masks(value: str) -> bool:
    """Whether a config name (or file stem) belongs to an instance-segmentation family.

    Decided from the name alone so that chains validate before anything is imported or built;
    the built model is checked against it at load (see :func:`model_has_mask_head`).
    """
    stem = config_name(value).lower()
    return any(h in stem for h in MASK_NAME_HINTS)


def mmdet_configs_dir() -> Path | None:
    """mmdet's bundled ``.mim/configs`` folder, found without importing mmdet (None if absent)."""
    try:
        spec = importlib.util.find_spec("mmdet")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    d = Path(spec.origin).parent / ".mim" / "configs"
    return d if d.is_dir() else None


@lru_cache(maxsize=4)
def bundled_configs(root: Path) -> dict[str, Path]:
    """Bundled config name -> file (``_base_`` fragments excluded)."""
    out: dict[str, Path] = {}
    for p in sorted(root.glob("*/**/*.py")):
        if "_base_" not in p.parts:
            out.setdefault(p.stem, p)
    return out


def resolve_config_path(value: str) -> Path:
    """The config file for a ``config`` value: an existing path, or a name in mmdet's bundled configs."""
    if _is_path(value):
        p = Path(value).expanduser()
        if not p.is_file():
            raise ConfigError(f"proposer 'mmdet': config file {p} not found")
        return p
    root = mmdet_configs_dir()
    if root is None:
        raise DependencyMissing("proposer 'mmdet' needs mmdet: run scripts/install_mmdet.sh VENV")
    table = bundled_configs(root)
    if value not in table:
        raise ConfigError(f"proposer 'mmdet': unknown config {value!r}" + did_you_mean(value, table))
    return table[value]


class MmdetConfig(ComponentConfig):
    config: str = Field(
        DEFAULT_CONFIG,
        description="an mmdet config file (.py) or the name of one bundled with mmdet "
        "(e.g. mask-rcnn_r50_fpn_1x_coco, rtmdet-ins_tiny_8xb32-300e_coco)",
    )
    checkpoint: str | None = Field(
        None,
        description="a local .pth checkpoint (overrides lookup; required for configs without declared weights)",
    )
    score_threshold: float = Field(0.3, ge=0.0, le=1.0, description="keep instances scoring above this")
    top_k: int | None = Field(
        100, ge=1, description="keep at most this many per frame (highest scores); None: all"
    )
    masks: bool | None = Field(
        None,
        description="pass on the model's masks: None = when the config name is an instance-segmentation "
        "family (mask-rcnn, rtmdet-ins, solo, ...), True = require them, False = boxes only",
    )
    batch_size: int = Field(
        4, ge=1, description="frames per forward pass", json_schema_extra={"affects_output": False}
    )

    @field_validator("config")
    @classmethod
    def _check_config(cls, v: str) -> str:
        v = v.strip()
        if _is_path(v):
            if not Path(v).expanduser().is_file():
                raise ValueError(f"config file {v} not found")
            return v
        if not _NAME_RE.match(v):
            raise ValueError(f"config {v!r} is neither a .py file nor a config name")
        root = mmdet_configs_dir()
        if root is not None:  # mmdet installed: the name must be one of its bundled configs
            table = bundled_configs(root)
            if v not in table:
                raise ValueError(f"unknown mmdet config {v!r}" + did_you_mean(v, table))
        return v


def resolve_masks(config: MmdetConfig) -> bool:
    return name_gives_masks(config.config) if config.masks is None else config.masks


def model_has_mask_head(model_cfg: Any) -> bool:
    """Whether an mmdet model config has a mask branch (a ``mask_head`` or an instance head)."""
    if isinstance(model_cfg, dict):
        for k, v in model_cfg.items():
            if k == "mask_head" and v:
                return True
            if k == "type" and isinstance(v, str) and re.search(r"Ins|SOLO|Mask(?!ed)|Yolact|CondInst", v):
                return True
            if model_has_mask_head(v):
                return True
    elif isinstance(model_cfg, (list, tuple)):
        return any(model_has_mask_head(x) for x in model_cfg)
    return False


# --------------------------------------------------------------------------- checkpoint


def checkpoint_classes(path: Path) -> tuple[str, ...] | None:
    """Class names from an mmdet checkpoint's ``meta`` (memory-mapped, ``weights_only=True``)."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint (mmap needs one), or refused: fall back to a plain read
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:
            return None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return None
    dm = meta.get("dataset_meta")
    classes = None
    if isinstance(dm, dict):
        classes = {k.lower(): v for k, v in dm.items()}.get("classes")
    if classes is None:
        classes = meta.get("CLASSES")
    if isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes):
        return tuple(classes)
    return None


def load_checkpoint_into(model: Any, path: Path) -> tuple[str, ...] | None:
    """Load ``path`` into ``model`` (no pickled code); returns the checkpoint's class names."""
    try:
        state = load_state_dict(path)  # weights_only=True: refuses pickled code with a one-line error
    except AvsegError as exc:
        raise AvsegError(f"proposer 'mmdet': {exc}") from None
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
    # Two explicit exceptions to strict loading, both as mmengine's load_checkpoint (which
    # DetInferencer uses) allows them: BatchNorm's num_batches_tracked counters, absent from older
    # checkpoints and unused at inference; and checkpoint keys the config's model has no use for
    # (model-zoo checkpoints of some configs carry training-only parts, e.g. EMA copies).
    load_strict(model, state, f"proposer 'mmdet': checkpoint {path}",
                may_lack=lambda k: k.endswith("num_batches_tracked"), may_carry=lambda k: True)
    return checkpoint_classes(path)


# --------------------------------------------------------------------------- mmdet plumbing


def build_test_pipeline(cfg: Any) -> Any:
    """The config's test pipeline, set up as ``DetInferencer._init_pipeline`` does."""
    from mmcv.transforms import Compose

    pipeline_cfg = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    if "meta_keys" in pipeline_cfg[-1]:
        pipeline_cfg[-1]["meta_keys"] = tuple(k for k in pipeline_cfg[-1]["meta_keys"] if k != "img_id")
    # (mmdet's inference_detector rewrites a model's cfg in place to LoadImageFromNDArray)
    loaders = ("LoadImageFromFile", "LoadImageFromNDArray", "InferencerLoader")
    idx = [i for i, t in enumerate(pipeline_cfg) if str(t["type"]).split(".")[-1] in loaders]
    if not idx:
        raise ConfigError(
            "proposer 'mmdet': the config's test pipeline loads no image (no LoadImageFromFile)"
        )
    pipeline_cfg[idx[0]]["type"] = "mmdet.InferencerLoader"
    return Compose(pipeline_cfg)


def build_model(cfg: Any, device: Any) -> Any:
    """The detector of ``cfg`` (random init, no pretrained backbone fetch), in eval mode."""
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get("default_scope", "mmdet") or "mmdet")
    if "init_cfg" in cfg.model.get("backbone", {}):
        cfg.model.backbone.init_cfg = None  # as init_detector does: never download a backbone
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.cfg = cfg
    return model.to(device).eval()


def instances_to_proposals(
    pred: Any,
    classes: Sequence[str],
    score_threshold: float,
    top_k: int | None,
    with_masks: bool,
) -> Proposals:
    """The documented conversion of one ``DetDataSample`` into :class:`Proposals`."""
    inst = pred.pred_instances
    scores = inst.scores.detach().float().cpu().numpy().reshape(-1)
    labels = inst.labels.detach().cpu().numpy().reshape(-1)
    masks_t = inst.get("masks")
    if "bboxes" in inst:
        boxes = inst.bboxes.detach().float().cpu().numpy().reshape(-1, 4)
    else:
        boxes = np.zeros((len(scores), 4), np.float32)
    if masks_t is not None and (("bboxes" not in inst) or float(np.abs(boxes).sum()) == 0.0):
        from mmdet.structures.mask import mask2bbox

        boxes = mask2bbox(masks_t.cpu()).float().numpy().reshape(-1, 4)  # SOLO-style: boxes from masks
    keep = np.flatnonzero(scores > score_threshold)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    if top_k is not None:
        keep = keep[:top_k]
    names = [classes[i] if 0 <= i < len(classes) else f"class_{i}" for i in labels[keep].tolist()]
    masks = None
    if with_masks:
        if masks_t is None:
            raise AvsegError("proposer 'mmdet': the model gave no masks; set masks=false or use a mask model")
        m = masks_t.masks if hasattr(masks_t, "to_ndarray") else masks_t.detach().cpu().numpy()
        masks = np.asarray(m)[keep].astype(bool)
    return Proposals(
        boxes=boxes[keep].astype(np.float32),
        scores=scores[keep].astype(np.float32),
        labels=names,
        masks=masks,
    )


# --------------------------------------------------------------------------- component


class MmdetProposer(ModelComponent, Proposer):
    name: ClassVar[str] = "mmdet"
    description: ClassVar[str] = (
        "MMDetection 3.x detector / instance segmenter (Mask R-CNN, RTMDet-Ins, ...): boxes, class names, masks"
    )
    Config: ClassVar[type[ComponentConfig]] = MmdetConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "mmcv", "mmengine", "mmdet")
    extra: ClassVar[str | None] = "mmdet"
    weights: ClassVar[dict[str, list[WeightFile]]] = {k: [v] for k, v in KNOWN_WEIGHTS.items()}
    default_variant: ClassVar[str | None] = DEFAULT_CONFIG

    config: MmdetConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        assert isinstance(config, MmdetConfig)
        return Capabilities(gives_masks=resolve_masks(config), gives_labels=True)

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        for mod in ("torch", "mmcv", "mmengine", "mmdet"):
            if importlib.util.find_spec(mod) is None:
                raise DependencyMissing(
                    f"proposer 'mmdet' needs {mod}: run scripts/install_mmdet.sh VENV "
                    "(builds mmcv 2.1.0 with its compiled ops, then installs mmengine and mmdet 3.3.0)"
                )
        self.with_masks = resolve_masks(self.config)
        self.device = runtime.torch_device()
        import torch

        if runtime.torch_dtype() != torch.float32:
            raise ConfigError("proposer 'mmdet' runs in float32 only; use --dtype float32")
        self.variant = config_name(self.config.config)
        # tiny: the bundled tiny config; random (--random-init): the named config at its real sizes,
        # seeded random weights, no checkpoint; pretrained: the config and its checkpoint
        self._config_path = None if self.weights_mode == "tiny" else resolve_config_path(self.config.config)
        wf = KNOWN_WEIGHTS.get(self.variant) if not _is_path(self.config.config) else None
        if self.weights_mode == "pretrained" and wf is None:  # a config of the user's: its checkpoint too
            if self.config.checkpoint is None:
                raise ConfigError(
                    f"proposer 'mmdet': config {self.config.config!r} has no declared weights; "
                    "give its checkpoint with --set proposer.checkpoint=PATH"
                )
            p = Path(self.config.checkpoint).expanduser()
            if not p.is_file():
                raise WeightsMissing(f"proposer 'mmdet' ({self.variant}): checkpoint {p} not found")
            wf = WeightFile(p.name)
        weights = self.resolve_weights(self.variant, [wf] if wf else [], [self.config.checkpoint])
        self.model, self.pipeline = shared_model(runtime, "mmdet", self.variant, weights, self._load,
                                                 self._config_path)
        self.classes: tuple[str, ...] = tuple(self.model.dataset_meta["classes"])
        if self.with_masks and not model_has_mask_head(self.model.cfg.model.to_dict()):
            raise ConfigError(
                f"proposer 'mmdet': config {self.config.config!r} has no mask branch; set masks=false"
            )

    def _load(self) -> tuple[Any, Any]:
        import torch

        def read_config() -> Any:
            from mmengine.config import Config

            assert self._config_path is not None
            try:
                return Config.fromfile(str(self._config_path))
            except Exception as exc:  # a broken or non-mmdet config file
                msg = " ".join(str(exc).split())[:200]
                raise ConfigError(
                    f"proposer 'mmdet': cannot read config {self._config_path}: {msg}"
                ) from None

        def seeded(cfg: Any) -> tuple[Any, Any, tuple[str, ...] | None]:
            torch.manual_seed(self.runtime.seed)
            return cfg, build_model(cfg, self.device), None

        def tiny() -> tuple[Any, Any, tuple[str, ...] | None]:
            from avseg_mmdet.tiny import TINY_CLASSES, tiny_config

            cfg, model, _ = seeded(tiny_config())
            return cfg, model, TINY_CLASSES

        def pretrained(w: ModelWeights) -> tuple[Any, Any, tuple[str, ...] | None]:
            cfg = read_config()
            model = build_model(cfg, torch.device("cpu"))
            classes = load_checkpoint_into(model, w.file(0))
            return cfg, model.to(self.device).eval(), classes

        assert self.model_weights is not None
        cfg, model, classes = dispatch(self.model_weights, tiny=tiny, random=lambda: seeded(read_config()),
                                       pretrained=pretrained)
        model.dataset_meta = {"classes": tuple(classes or COCO_CLASSES)}
        return model, build_test_pipeline(cfg)

    # ------------------------------------------------------------------ inference

    def predict(self, frames: Sequence[Image]) -> list[Any]:
        """mmdet's raw ``DetDataSample`` predictions for RGB frames (as ``DetInferencer`` runs them)."""
        import torch
        from mmengine.dataset import pseudo_collate

        out: list[Any] = []
        bs = self.config.batch_size
        for s in range(0, len(frames), bs):
            chunk = [np.ascontiguousarray(np.asarray(f)[..., ::-1]) for f in frames[s : s + bs]]  # RGB -> BGR
            data = pseudo_collate([self.pipeline(img) for img in chunk])
            with torch.no_grad():
                out.extend(self.model.test_step(data))
            self.runtime.count("mmdet.forward_passes")
            self.runtime.count("mmdet.frames", len(chunk))
        return out

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        frames = list(frames)
        results = []
        for frame, pred in zip(frames, self.predict(frames), strict=True):
            p = instances_to_proposals(
                pred, self.classes, self.config.score_threshold, self.config.top_k, self.with_masks
            )
            if p.masks is not None and p.masks.shape[1:] != frame.shape[:2]:
                raise AvsegError(
                    f"proposer 'mmdet': masks of shape {p.masks.shape[1:]} for a frame of {frame.shape[:2]}"
                )
            self.runtime.count("mmdet.boxes", len(p))
            results.append(p)
        return results
