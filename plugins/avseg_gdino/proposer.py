"""``gdino``: GroundingDINO (transformers) boxes for text prompts, one Proposals per frame.

Prompts per frame are label strings (audio tags, or the configured vocabulary). They are
normalised by :func:`avseg.labels.normalise_label` (lowercase, ``_``/``-``/``.`` to spaces, no
leading article, de-duplicated in order), the function eval maps returned labels with, and
joined the way GroundingDINO expects: ``"dog. acoustic guitar."``. Frames with equal prompts
go through the model together; post-processing is transformers' own
``GroundingDinoProcessor.post_process_grounded_object_detection``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from avseg import vocab
from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.errors import ConfigError, DependencyMissing
from avseg.models import ModelComponent, ModelWeights, build_model, resolve_weights, shared_model
from avseg.runtime import Runtime
from avseg.types import Image, Proposals
from avseg.weights import WeightFile, load_hf_folder
from avseg_gdino.mm import MM_WEIGHTS, is_mm
from avseg_gdino.vocab import detection_labels, prompt_text, resolve_vocabulary

__all__ = ["GroundingDinoProposer", "detection_labels", "prompt_text", "resolve_vocabulary"]


# --------------------------------------------------------------------------- component


#: the variant names before they were named after the backbone ("tiny" read like --tiny)
RENAMED_VARIANTS = {"tiny": "swin-t", "base": "swin-b", "official-tiny": "official-swin-t",
                    "official-base": "official-swin-b"}


class GdinoConfig(ComponentConfig):
    backend: Literal["transformers", "official"] = Field(
        "transformers",
        description="transformers' GroundingDinoForObjectDetection, or IDEA-Research's own code "
        "(PyPI groundingdino-py, see official.py)",
    )
    variant: Literal["swin-t", "swin-b", "mm-tiny", "mm-base", "mm-large"] = Field(
        "swin-t", description="the backbone: swin-t (grounding-dino-tiny / groundingdino_swint_ogc) or "
        "swin-b (grounding-dino-base / groundingdino_swinb_cogcoor); mm-*: MM-GroundingDINO (Swin-T/B/L)",
    )
    checkpoint: str | None = Field(
        None,
        description="a local folder holding the HF checkpoint (overrides lookup); "
        "backend=official: the official .pth file",
    )
    text_encoder: str | None = Field(
        None,
        description="backend=official only: a local bert-base-uncased folder (overrides lookup)",
    )
    box_threshold: float = Field(
        0.35, ge=0.0, le=1.0, description="keep boxes whose best token score exceeds this"
    )
    text_threshold: float = Field(0.25, ge=0.0, le=1.0, description="tokens above this make up a box's label")
    top_k: int | None = Field(
        None, ge=1, description="keep at most this many boxes per frame, best score first (None: all above threshold)"
    )
    vocabulary: str | list[str] | None = Field(
        None,
        description="None: prompts from audio tags; or a list of names, a named vocabulary "
        "(avsbench-s4, avss, coco) or a text file with one name per line; used INSTEAD of tags",
    )
    batch_size: int = Field(
        8, ge=1, description="frames per forward pass", json_schema_extra={"affects_output": False}
    )

    @field_validator("variant", mode="before")
    @classmethod
    def _renamed_variant(cls, v: object) -> object:
        if isinstance(v, str) and v in RENAMED_VARIANTS and not v.startswith("official-"):
            raise ValueError(
                f"variant {v!r} is now {RENAMED_VARIANTS[v]!r} (variants are named after the backbone; "
                "--tiny is what selects random miniature models)"
            )
        return v

    @field_validator("vocabulary")
    @classmethod
    def _check_vocabulary(cls, v: str | list[str] | None) -> str | list[str] | None:
        return vocab.check_object_vocabulary(v)


OFFICIAL_SWINT = WeightFile(
    "groundingdino_swint_ogc.pth",
    url="https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth",
    licence="Apache-2.0",
)
OFFICIAL_SWINB = WeightFile(
    "groundingdino_swinb_cogcoor.pth",
    url="https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth",
    licence="Apache-2.0",
)
BERT_BASE_UNCASED = WeightFile(
    "bert-base-uncased",
    hf_repo="google-bert/bert-base-uncased",
    hf_files=("config.json", "vocab.txt", "model.safetensors"),
    licence="Apache-2.0",
)


def authors_image_processor(image_processor: Any) -> Any:
    """The image processor that reproduces GroundingDINO's own preprocessing
    (``groundingdino.datasets.transforms``: ``RandomResize([800], max_size=1333)`` of a PIL image,
    i.e. PIL bilinear, then ``ToTensor`` and ``Normalize``): transformers' PIL backend, which
    equals it to 0.0 at the same output size. transformers 5's default (torchvision) backend
    resizes tensors and differs by up to 0.0175 (one grey level); see docs/plugins/gdino.md.
    On transformers 4 the default class is already the PIL one."""
    try:
        from transformers import GroundingDinoImageProcessorPil
    except ImportError:  # transformers 4
        return image_processor
    if isinstance(image_processor, GroundingDinoImageProcessorPil):
        return image_processor
    return GroundingDinoImageProcessorPil(**image_processor.to_dict())


def authors_resize_shape(height: int, width: int, shortest: int, longest: int) -> tuple[int, int]:
    """``groundingdino.datasets.transforms.resize``'s output (h, w): the short side to ``shortest``,
    rounded down to fit ``longest``, the long side ``int()`` of the rounded short side times the
    aspect ratio (transformers scales the unrounded size, one pixel wider in some cases)."""
    size = shortest
    lo, hi = float(min(height, width)), float(max(height, width))
    if hi / lo * size > longest:
        size = int(round(longest * lo / hi))
    if (width <= height and width == size) or (height <= width and height == size):
        return height, width
    if width < height:
        return int(size * height / width), size
    return size, int(size * width / height)


class GroundingDinoProposer(ModelComponent, Proposer):
    name: ClassVar[str] = "gdino"
    description: ClassVar[str] = (
        "GroundingDINO boxes for text prompts (audio tags or a fixed vocabulary), transformers or official"
    )
    Config: ClassVar[type[ComponentConfig]] = GdinoConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    extra: ClassVar[str | None] = "gdino"
    weights: ClassVar[dict[str, list[WeightFile]]] = {
        "swin-t": [
            WeightFile(
                "grounding-dino-tiny",
                hf_repo="IDEA-Research/grounding-dino-tiny",
                hf_files=("config.json", "preprocessor_config.json"),
                licence="Apache-2.0",
            )
        ],
        "swin-b": [
            WeightFile(
                "grounding-dino-base",
                hf_repo="IDEA-Research/grounding-dino-base",
                hf_files=("config.json", "preprocessor_config.json"),
                licence="Apache-2.0",
            )
        ],
    }
    # backend=official: the official checkpoints plus bert-base-uncased (its text encoder)
    weights["official-swin-t"] = [OFFICIAL_SWINT, BERT_BASE_UNCASED]
    weights["official-swin-b"] = [OFFICIAL_SWINB, BERT_BASE_UNCASED]
    # variant mm-*: MM-GroundingDINO (transformers' MMGroundingDinoForObjectDetection, see mm.py)
    weights.update(MM_WEIGHTS)
    default_variant: ClassVar[str | None] = "swin-t"
    #: old variant (and weights) names -> new: refused with the new name, here and by `avseg weights`
    renamed_variants: ClassVar[dict[str, str]] = RENAMED_VARIANTS

    config: GdinoConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        assert isinstance(config, GdinoConfig)
        return Capabilities(
            needs_prompts=True, has_vocabulary=config.vocabulary is not None, gives_labels=True
        )

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise DependencyMissing(
                f"proposer 'gdino' needs {exc.name or 'transformers'}: pip install 'avseg[gdino]'"
            ) from None
        self.vocabulary = resolve_vocabulary(self.config.vocabulary)
        self.device = runtime.torch_device()
        self.dtype = runtime.torch_dtype()
        if self.config.backend == "official":
            if is_mm(self.config.variant):
                raise ConfigError(f"proposer 'gdino': variant {self.config.variant} needs backend=transformers")
            self._init_official()
            return
        weights = self.resolve_weights(self.config.variant, self.weights[self.config.variant][:1],
                                       [self.config.checkpoint])
        self.model, self.processor = shared_model(runtime, "gdino", self.config.variant, weights, self._load)

    def _load(self) -> tuple[Any, Any]:
        if is_mm(self.config.variant):
            return self._load_mm()
        from avseg_gdino import tiny

        def pretrained(w: ModelWeights) -> tuple[Any, Any]:
            from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

            return load_hf_folder("proposer 'gdino'", w.file(0), GroundingDinoForObjectDetection, GroundingDinoProcessor)

        assert self.model_weights is not None
        model, processor = build_model(self.model_weights, tiny=lambda: tiny.build_tiny(self.runtime.seed),
                                       random=lambda: tiny.build_random(self.config.variant, self.runtime.seed),
                                       pretrained=pretrained)
        model = model.to(device=self.device, dtype=self.dtype).eval()
        processor.image_processor = authors_image_processor(processor.image_processor)
        return model, processor

    def _load_mm(self) -> tuple[Any, Any]:
        from avseg_gdino import mm

        assert self.model_weights is not None
        variant, seed = self.config.variant, self.runtime.seed
        model, processor = build_model(self.model_weights, tiny=lambda: mm.build_random(variant, True, seed),
                                       random=lambda: mm.build_random(variant, False, seed),
                                       pretrained=lambda w: mm.load_pretrained(w.file(0), "proposer 'gdino'"))
        return model.to(device=self.device, dtype=self.dtype).eval(), processor

    # ------------------------------------------------------------------ backend=official

    def _init_official(self) -> None:
        try:
            import groundingdino  # noqa: F401
        except ImportError as exc:
            raise DependencyMissing(
                f"proposer 'gdino' (backend=official) needs {exc.name or 'groundingdino'}: "
                "pip install groundingdino-py (see docs/plugins/gdino.md)"
            ) from None
        key_variant = f"official-{self.config.variant}"
        self.model_weights = weights = resolve_weights(
            f"proposer 'gdino/{key_variant}'", self.runtime, None, self.weights[key_variant],
            [self.config.checkpoint, self.config.text_encoder], self.weights_mode)
        self.model = shared_model(self.runtime, "gdino-official", self.config.variant, weights, self._load_official)
        self.processor = None

    def _load_official(self) -> Any:
        from avseg_gdino import official

        assert self.model_weights is not None
        variant, seed = self.config.variant, self.runtime.seed
        model = build_model(self.model_weights, tiny=lambda: official.build_tiny_official(seed),
                            random=lambda: official.build_random_official(variant, seed),
                            pretrained=lambda w: official.load_official(variant, w.file(0), w.file(1)))
        return model.to(device=self.device, dtype=self.dtype).eval()

    def _detect_official(self, images: list[Image], caption: str) -> list[dict[str, Any]]:
        """The package's transform -> model -> ``predict``'s post-processing (see official.py)."""
        import torch

        from avseg_gdino import official

        resize = official.TINY_RESIZE if self.weights_mode == "tiny" else official.REAL_RESIZE
        tensors = official.preprocess(images, resize)
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        # frames of one clip share a size; differently sized ones go separately (no padding)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        results: dict[int, dict[str, Any]] = {}
        for idx in by_shape.values():
            batch = torch.stack([tensors[i] for i in idx]).to(device=self.device, dtype=self.dtype)
            with torch.inference_mode():
                outputs = self.model(batch, captions=[official.official_caption(caption)] * len(idx))
            self.runtime.count("gdino.forward_passes")
            self.runtime.count("gdino.frames", len(idx))
            dets = official.postprocess(
                self.model,
                outputs,
                caption,
                self.config.box_threshold,
                self.config.text_threshold,
                [sizes[i] for i in idx],
            )
            results.update(zip(idx, dets, strict=True))
        return [results[i] for i in range(len(images))]

    # ------------------------------------------------------------------ prompts

    def frame_prompts(self, n: int, prompts: Sequence[list[str]] | None) -> list[list[str]]:
        return vocab.frame_prompts(self.vocabulary, n, prompts, "proposer 'gdino'")

    def chunks(self, labels: list[str]) -> list[list[str]]:
        """Split labels into captions that fit the model's text length (max_text_len tokens)."""
        if self.config.backend == "official":
            limit, tok = int(self.model.max_text_len), self.model.tokenizer
        else:
            limit, tok = int(getattr(self.model.config, "max_text_len", 256)), self.processor.tokenizer
        out: list[list[str]] = [[]]
        used = 2  # [CLS] and [SEP]
        for label in labels:
            cost = len(tok(label, add_special_tokens=False)["input_ids"]) + 1  # the '.'
            if out[-1] and used + cost > limit:
                out.append([])
                used = 2
            out[-1].append(label)
            used += cost
        return out

    # ------------------------------------------------------------------ inference

    def _detect(self, images: list[Image], caption: str) -> list[dict[str, Any]]:
        """Upstream processor -> model -> upstream post-processing for frames sharing one caption."""
        import torch

        if self.config.backend == "official":
            return self._detect_official(images, caption)

        ip_size = self.processor.image_processor.size
        shapes = {(int(im.shape[0]), int(im.shape[1])) for im in images}
        kwargs: dict[str, Any] = {}
        if len(shapes) == 1 and ip_size.get("shortest_edge") and ip_size.get("longest_edge"):
            (h, w), short, long = shapes.pop(), int(ip_size["shortest_edge"]), int(ip_size["longest_edge"])
            oh, ow = authors_resize_shape(h, w, short, long)
            kwargs["size"] = {"height": oh, "width": ow}  # the authors' rounding of the output size
        inputs = self.processor(images=images, text=[caption] * len(images), return_tensors="pt", **kwargs)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        self.runtime.count("gdino.forward_passes")
        self.runtime.count("gdino.frames", len(images))
        if outputs.logits.dtype != torch.float32:
            outputs.logits = outputs.logits.float()
            outputs.pred_boxes = outputs.pred_boxes.float()
        return self.processor.post_process_grounded_object_detection(
            outputs,
            input_ids=inputs["input_ids"],
            threshold=self.config.box_threshold,
            text_threshold=self.config.text_threshold,
            target_sizes=[(int(im.shape[0]), int(im.shape[1])) for im in images],
        )

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        frames = list(frames)
        per_frame = self.frame_prompts(len(frames), prompts)
        results: list[Proposals] = [Proposals.empty(with_labels=True) for _ in frames]
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, labels in enumerate(per_frame):
            if labels:
                groups.setdefault(tuple(labels), []).append(i)
        parts: dict[int, list[tuple[np.ndarray, np.ndarray, list[str]]]] = {i: [] for i in range(len(frames))}
        bs = self.config.batch_size
        for labels, idx in groups.items():
            for chunk in self.chunks(list(labels)):
                caption = prompt_text(chunk)
                for s in range(0, len(idx), bs):
                    batch = idx[s : s + bs]
                    dets = self._detect([np.ascontiguousarray(frames[i]) for i in batch], caption)
                    for i, d in zip(batch, dets, strict=True):
                        boxes = d["boxes"].detach().float().cpu().numpy().reshape(-1, 4)
                        parts[i].append(
                            (boxes, d["scores"].detach().float().cpu().numpy().reshape(-1), detection_labels(d, len(boxes)))
                        )
        for i, ps in parts.items():
            if not ps:
                continue
            boxes = np.concatenate([p[0] for p in ps]).astype(np.float32)
            scores = np.concatenate([p[1] for p in ps]).astype(np.float32)
            labels_out = [t for p in ps for t in p[2]]
            if self.config.top_k is not None and len(scores) > self.config.top_k:
                keep = np.sort(np.argsort(-scores, kind="stable")[: self.config.top_k])
                boxes, scores, labels_out = boxes[keep], scores[keep], [labels_out[j] for j in keep]
            results[i] = Proposals(boxes=boxes, scores=scores, labels=labels_out)
            self.runtime.count("gdino.boxes", len(boxes))
        return results
