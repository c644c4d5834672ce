"""``sam3``: SAM 3 promptable concept segmentation: text prompts -> every instance, with masks.

Prompts per frame are label strings (the kept audio tags, or the configured vocabulary), normalised
as ``gdino`` does. Each frame is encoded once (``Sam3Model.get_vision_features``), each prompt once
per clip (``get_text_features``), and every (frame, prompt) pair goes through the detector; the
instances are transformers' own ``Sam3Processor.post_process_instance_segmentation``, labelled with
their prompt. A frame's instances are sorted by score and cut to ``top_k``.

``track: true`` runs ``Sam3VideoModel`` on the clip instead: the clip's prompts (the union of its
frames' prompts) are added to one inference session and each concept's instances are detected and
tracked through the clip with ``propagate_in_video_iterator``; ``Sam3VideoProcessor.postprocess_outputs``
gives each frame's tracked objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from avseg import vocab
from avseg.components import Capabilities, ComponentConfig, Proposer
from avseg.errors import AvsegError, ConfigError, DependencyMissing
from avseg.models import ModelComponent
from avseg.runtime import Runtime
from avseg.types import Image, Proposals
from avseg.weights import WeightFile
from avseg_sam3.models import WEIGHTS


class Sam3ProposerConfig(ComponentConfig):
    variant: Literal["sam3"] = Field("sam3", description="facebook/sam3")
    checkpoint: str | None = Field(None, description="a local folder holding the HF checkpoint (overrides lookup)")
    vocabulary: str | list[str] | None = Field(
        None,
        description="None: prompts from audio tags; or a list of names, a named vocabulary "
        "(avsbench-s4, avss, coco) or a text file with one name per line; used INSTEAD of tags",
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="keep instances whose score exceeds this")
    mask_threshold: float = Field(0.5, ge=0.0, le=1.0, description="mask probability that makes a pixel foreground")
    top_k: int | None = Field(100, ge=1, description="keep at most this many instances per frame (None: all)")
    track: bool = Field(
        False,
        description="Sam3VideoModel: detect and track every concept of the clip through its frames "
        "(the clip's prompts are the union of its frames' prompts)",
    )
    batch_size: int = Field(
        4, ge=1, description="frames per vision forward pass", json_schema_extra={"affects_output": False}
    )

    @field_validator("vocabulary")
    @classmethod
    def _check_vocabulary(cls, v: str | list[str] | None) -> str | list[str] | None:
        return vocab.check_object_vocabulary(v)


class Sam3Proposer(ModelComponent, Proposer):
    name: ClassVar[str] = "sam3"
    description: ClassVar[str] = (
        "SAM 3 (transformers): every instance of each text prompt (tags or a vocabulary), with masks; "
        "track: true tracks the concepts through the clip"
    )
    Config: ClassVar[type[ComponentConfig]] = Sam3ProposerConfig
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    extra: ClassVar[str | None] = "sam3"
    weights: ClassVar[dict[str, list[WeightFile]]] = WEIGHTS
    default_variant: ClassVar[str | None] = "sam3"

    config: Sam3ProposerConfig

    @classmethod
    def capabilities(cls, config: ComponentConfig) -> Capabilities:
        assert isinstance(config, Sam3ProposerConfig)
        return Capabilities(
            needs_prompts=True, has_vocabulary=config.vocabulary is not None, gives_masks=True, gives_labels=True
        )

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.who = f"proposer '{self.name}'"
        for mod in ("torch", "transformers"):
            try:
                __import__(mod)
            except ImportError:
                raise DependencyMissing(f"{self.who} needs {mod}: pip install 'avseg[sam3]'") from None
        self.vocabulary = self._resolve_vocabulary(self.config.vocabulary)
        weights = self.resolve_weights(self.config.variant, WEIGHTS[self.config.variant][:1], [self.config.checkpoint])
        from avseg_sam3.models import load

        self.loaded = load(runtime, self.who, self.config.track, weights)
        self._text: dict[str, tuple[Any, Any]] = {}  # prompt -> (text features, attention mask)

    def _resolve_vocabulary(self, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        names = vocab.normalise_prompts(vocab.resolve_vocabulary(v, vocab.OBJECT_VOCABULARIES, self.who, comments=True))
        if not names:
            raise ConfigError(f"{self.who}: vocabulary {v!r} holds no names")
        return names

    def frame_prompts(self, n: int, prompts: Sequence[list[str]] | None) -> list[list[str]]:
        return vocab.frame_prompts(self.vocabulary, n, prompts, self.who)

    # ------------------------------------------------------------------ image mode

    def text_features(self, label: str) -> tuple[Any, Any]:
        """(pooled text features (1, 32, D), attention mask (1, 32)) of one prompt, computed once."""
        import torch

        if label not in self._text:
            model, proc = self.loaded.model, self.loaded.processor
            enc = proc(text=[label], return_tensors="pt")
            device = next(model.parameters()).device
            with torch.inference_mode():
                out = model.get_text_features(
                    input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                    return_dict=True,
                )
            self.runtime.count("sam3.text_encoder")
            self._text[label] = (out.pooler_output, enc["attention_mask"].to(device))
        return self._text[label]

    @staticmethod
    def _subset_vision(vision: Any, sel: list[int]) -> Any:
        """The vision outputs of the frames ``sel`` of a batch (every tensor field sliced on its batch axis)."""
        import torch

        def cut(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                return v[sel]
            if isinstance(v, (tuple, list)):
                return type(v)(cut(x) for x in v)
            return v

        return type(vision)(**{k: cut(v) for k, v in vision.items()})

    def _detect(self, frames: list[Image], per_frame: list[list[str]]) -> list[Proposals]:
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        model, proc = self.loaded.model, self.loaded.processor
        p0 = next(model.parameters())
        parts: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]] = {i: [] for i in range(len(frames))}
        todo = [i for i, labels in enumerate(per_frame) if labels]
        bs = self.config.batch_size
        for s in range(0, len(todo), bs):
            idx = todo[s : s + bs]
            pv = proc(images=[frames[i] for i in idx], return_tensors="pt")["pixel_values"].to(p0.device, p0.dtype)
            with torch.inference_mode():
                vision = model.get_vision_features(pixel_values=pv)
            self.runtime.count("sam3.vision_encoder", len(idx))
            labels_in_batch = list(dict.fromkeys(lab for i in idx for lab in per_frame[i]))
            for label in labels_in_batch:
                sel = [k for k, i in enumerate(idx) if label in per_frame[i]]
                v = vision if len(sel) == len(idx) else self._subset_vision(vision, sel)
                feats, mask = self.text_features(label)
                with torch.inference_mode():
                    out = model(
                        vision_embeds=v,
                        text_embeds=BaseModelOutputWithPooling(pooler_output=feats.expand(len(sel), -1, -1)),
                        attention_mask=mask.expand(len(sel), -1),
                    )
                self.runtime.count("sam3.detector_passes")
                for name in ("pred_masks", "pred_boxes", "pred_logits", "presence_logits"):
                    t = getattr(out, name, None)
                    if t is not None and t.dtype != torch.float32:
                        setattr(out, name, t.float())
                sizes = [(int(frames[idx[k]].shape[0]), int(frames[idx[k]].shape[1])) for k in sel]
                results = proc.post_process_instance_segmentation(
                    out, threshold=self.config.threshold, mask_threshold=self.config.mask_threshold, target_sizes=sizes
                )
                for k, r in zip(sel, results, strict=True):
                    n = len(r["scores"])
                    parts[idx[k]].append((
                        r["boxes"].float().cpu().numpy().reshape(-1, 4),
                        r["scores"].float().cpu().numpy().reshape(-1),
                        r["masks"].cpu().numpy().astype(bool).reshape(n, *sizes[sel.index(k)]),
                        [label] * n,
                    ))
        return [self._frame_result(frames[i], parts[i]) for i in range(len(frames))]

    def _frame_result(
        self, frame: Image, ps: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]
    ) -> Proposals:
        h, w = frame.shape[:2]
        if not ps or not sum(len(p[1]) for p in ps):
            return Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], np.zeros((0, h, w), bool))
        boxes = np.concatenate([p[0] for p in ps]).astype(np.float32)
        scores = np.concatenate([p[1] for p in ps]).astype(np.float32)
        masks = np.concatenate([p[2] for p in ps])
        labels = [t for p in ps for t in p[3]]
        order = np.argsort(-scores, kind="stable")
        if self.config.top_k is not None:
            order = order[: self.config.top_k]
        self.runtime.count("sam3.instances", len(order))
        return Proposals(boxes[order], scores[order], [labels[j] for j in order], masks[order], scores[order])

    # ------------------------------------------------------------------ track mode

    def _track(self, frames: list[Image], per_frame: list[list[str]]) -> list[Proposals]:
        import torch

        labels = list(dict.fromkeys(lab for ls in per_frame for lab in ls))
        if not labels:
            return [self._frame_result(f, []) for f in frames]
        sizes = {(int(f.shape[0]), int(f.shape[1])) for f in frames}
        if len(sizes) != 1:
            raise AvsegError(f"{self.who}: track needs frames of one size, got {sorted(sizes)}")
        (h, w), = sizes
        model, proc = self.loaded.model, self.loaded.processor
        p0 = next(model.parameters())
        session = proc.init_video_session(
            video=np.stack(frames), inference_device=p0.device, processing_device="cpu",
            video_storage_device="cpu", dtype=p0.dtype,
        )
        session = proc.add_text_prompt(inference_session=session, text=labels)
        parts: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]] = {i: [] for i in range(len(frames))}
        with torch.inference_mode():
            for out in model.propagate_in_video_iterator(inference_session=session, max_frame_num_to_track=len(frames)):
                r = proc.postprocess_outputs(session, out)
                self.runtime.count("sam3.tracked_frames")
                obj_label = {int(o): p for p, objs in r["prompt_to_obj_ids"].items() for o in objs}
                ids = [int(o) for o in r["object_ids"]]
                masks = r["masks"].cpu().numpy().astype(bool).reshape(len(ids), h, w)
                scores = r["scores"].float().cpu().numpy().reshape(-1)
                keep = [k for k in range(len(ids)) if masks[k].any() and scores[k] > self.config.threshold]
                parts[int(out.frame_idx)].append((
                    r["boxes"].float().cpu().numpy().reshape(-1, 4)[keep],
                    scores[keep],
                    masks[keep],
                    [obj_label.get(ids[k], "") for k in keep],
                ))
        return [self._frame_result(frames[i], parts[i]) for i in range(len(frames))]

    def propose(self, frames: Sequence[Image], prompts: Sequence[list[str]] | None = None) -> list[Proposals]:
        frames = [np.ascontiguousarray(f) for f in frames]
        per_frame = self.frame_prompts(len(frames), prompts)
        if self.config.track:
            return self._track(frames, per_frame)
        return self._detect(frames, per_frame)
