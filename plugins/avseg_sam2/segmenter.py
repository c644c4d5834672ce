"""``sam2``: SAM 2 box prompts -> masks, per frame or propagated through the clip.

Image mode (``propagate: false``) is the ``sam`` contract: one mask per box on its own frame, with
SAM 2's predicted IoU as the score, from transformers' Sam2Model and Sam2Processor (one image
encoding per frame, shared through runtime.memo).

Video mode (``propagate: true``) runs at the clip level (:meth:`Sam2Segmenter.segment_clip`):
every kept object becomes a prompt on its frame (its mask when it has one, else its box) in one
Sam2VideoModel inference session, driven as transformers documents it: add the frame's inputs,
run the model on that frame, then ``propagate_in_video_iterator`` forward from the first prompted
frame and, with ``direction: both``, backward from it. Propagated objects whose masks agree
(mean IoU >= ``merge_iou``) are one track and are merged; each frame's objects are then the
tracks' propagated masks, so an object the proposer missed on a frame is still there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from avseg.components import ComponentConfig, Segmenter
from avseg.errors import AvsegError, DependencyMissing
from avseg.models import ModelComponent
from avseg.runtime import Runtime
from avseg.types import FloatArray, Image, Proposals, SegmenterOutput, content_hash
from avseg.weights import WeightFile
from avseg_sam2.models import WEIGHTS


class Sam2Config(ComponentConfig):
    variant: Literal["tiny", "small", "base-plus", "large", "edgetam"] = Field(
        "large", description="facebook/sam2.1-hiera-{tiny,small,base-plus,large}, or EdgeTAM"
    )
    checkpoint: str | None = Field(None, description="a local folder holding the HF checkpoint (overrides lookup)")
    propagate: bool = Field(
        False,
        description="video mode: prompt each kept object on its frame and propagate it through the clip "
        "with SAM 2's memory (false: one mask per box on its own frame, like sam)",
    )
    direction: Literal["both", "forward"] = Field(
        "both", description="propagate: forward from the prompted frames only, or also backward"
    )
    merge_iou: float = Field(
        0.5, ge=0.0, le=1.0, description="propagate: tracks whose masks have mean IoU >= this are one object"
    )
    decoder_batch: int = Field(
        32, ge=0, description="boxes per mask-decoder call (0: all of a frame's boxes at once)",
        json_schema_extra={"affects_output": False},
    )


#: frames whose image features a propagation session keeps (~16 MB each at 1024 px)
VISION_CACHE_FRAMES = 16


def _path_tag(path: Path) -> str:
    return hashlib.blake2b(str(path.resolve()).encode(), digest_size=4).hexdigest()


class Sam2Segmenter(ModelComponent, Segmenter):
    name: ClassVar[str] = "sam2"
    description: ClassVar[str] = (
        "SAM 2 (transformers): one mask per box, or propagate: true to track the kept objects through the clip"
    )
    Config: ClassVar[type[ComponentConfig]] = Sam2Config
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    extra: ClassVar[str | None] = "sam2"
    weights: ClassVar[dict[str, list[WeightFile]]] = WEIGHTS
    default_variant: ClassVar[str | None] = "large"

    config: Sam2Config

    def __init__(self, config: ComponentConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, Sam2Config)
        self.cfg = config
        self.who = f"segmenter '{self.name}'"
        for mod in ("torch", "transformers"):
            try:
                __import__(mod)
            except ImportError:
                raise DependencyMissing(f"{self.who} needs {mod}: pip install 'avseg[sam2]'") from None
        self._path = self.resolve_weights(config.variant, WEIGHTS[config.variant][:1], [config.checkpoint]).path
        tag = _path_tag(self._path) if self._path else f"s{runtime.seed}"
        self.namespace = f"sam2-image/{config.variant}/{runtime.weights_mode}/{tag}/{runtime.dtype}"
        # the model a run needs is built now (a broken checkpoint fails before any clip); the other lazily
        self._image: Any = None
        self._video: Any = None
        if config.propagate:
            self.video_model()
        else:
            self.image_model()

    def image_model(self) -> Any:
        if self._image is None:
            from avseg_sam2.models import load

            self._image = load(self.runtime, self.who, self.cfg.variant, False, self.model_weights)
        return self._image

    def video_model(self) -> Any:
        if self._video is None:
            from avseg_sam2.models import load

            self._video = load(self.runtime, self.who, self.cfg.variant, True, self.model_weights)
        return self._video

    # -- image mode ---------------------------------------------------------------------------------
    def embedding(self, frame: Image) -> dict[str, np.ndarray]:
        """The image model's multi-level embeddings of ``frame`` (computed once per frame)."""

        def compute() -> dict[str, np.ndarray]:
            import torch

            loaded = self.image_model()
            self.runtime.count("sam2.image_encoder")
            pv = loaded.processor(images=frame, return_tensors="pt")["pixel_values"]
            p = next(loaded.model.parameters())
            with torch.inference_mode():
                embs = loaded.model.get_image_embeddings(pv.to(p.device, p.dtype))
            return {f"level{i}": e.float().cpu().numpy() for i, e in enumerate(embs)}

        return self.runtime.memo(self.namespace, content_hash(frame), compute)

    def segment(self, frames: Sequence[Image], boxes: Sequence[FloatArray]) -> list[SegmenterOutput]:
        import torch

        if len(frames) != len(boxes):
            raise ValueError(f"sam2: {len(frames)} frames but {len(boxes)} box sets")
        loaded = self.image_model()
        p = next(loaded.model.parameters())
        outputs: list[SegmenterOutput] = []
        for frame, frame_boxes in zip(frames, boxes, strict=True):
            h, w = frame.shape[:2]
            b = np.asarray(frame_boxes, dtype=np.float32).reshape(-1, 4)
            if len(b) == 0:
                outputs.append(SegmenterOutput(np.zeros((0, h, w), dtype=bool), np.zeros(0, dtype=np.float32)))
                continue
            emb = self.embedding(frame)
            embs = [torch.from_numpy(emb[f"level{i}"]).to(p.device, p.dtype) for i in range(len(emb))]
            step = self.cfg.decoder_batch or len(b)
            masks, scores = [], []
            for s in range(0, len(b), step):
                chunk = b[s : s + step]
                prompt = loaded.processor(
                    input_boxes=[chunk.tolist()], original_sizes=[[h, w]], return_tensors="pt"
                )
                with torch.inference_mode():
                    out = loaded.model(
                        image_embeddings=embs,
                        input_boxes=prompt["input_boxes"].to(p.device, p.dtype),
                        multimask_output=False,
                    )
                self.runtime.count("sam2.decoder_calls")
                m = loaded.processor.post_process_masks(out.pred_masks.float().cpu(), [[h, w]])[0]
                masks.append(m[:, 0].numpy().astype(bool))
                scores.append(out.iou_scores[0, :, 0].float().cpu().numpy())
            self.runtime.count("sam2.masks", len(b))
            outputs.append(SegmenterOutput(np.concatenate(masks), np.concatenate(scores).astype(np.float32)))
        return outputs

    # -- clip level ---------------------------------------------------------------------------------
    def segment_clip(
        self, frames: Sequence[Image], proposals: Sequence[Proposals], timestamps: Sequence[float] | None = None
    ) -> list[Proposals]:
        """Each frame's objects with masks: the same proposals (image mode), or the propagated tracks."""
        if len(frames) != len(proposals):
            raise ValueError(f"sam2: {len(frames)} frames but {len(proposals)} proposal sets")
        if not self.cfg.propagate:
            outs = self.segment(frames, [p.boxes for p in proposals])
            return [
                Proposals(p.boxes, p.scores, p.labels, o.masks, o.scores)
                for p, o in zip(proposals, outs, strict=True)
            ]
        return self.propagate(frames, proposals)

    def propagate(self, frames: Sequence[Image], proposals: Sequence[Proposals]) -> list[Proposals]:
        import torch

        from avseg_sam2.tracks import Track, merge_tracks, tracks_to_proposals

        sizes = [(int(f.shape[0]), int(f.shape[1])) for f in frames]
        labelled = any(p.labels is not None for p in proposals if len(p))
        tracks: list[Track] = []
        by_frame: dict[int, list[int]] = {}
        for t, p in enumerate(proposals):
            for j in range(len(p)):
                label = p.labels[j] if p.labels is not None else None
                by_frame.setdefault(t, []).append(len(tracks))
                tracks.append(Track(t, float(p.scores[j]), label))
        # every clip given to propagation, even with no object kept to carry (run.json shows it ran)
        self.runtime.count("sam2.propagation_clips")
        if not tracks:
            return tracks_to_proposals([], len(frames), sizes, labelled)
        if len(set(sizes)) != 1:
            raise AvsegError(f"{self.who}: propagate needs frames of one size, got {sorted(set(sizes))}")
        h, w = sizes[0]
        loaded = self.video_model()
        model, proc = loaded.model, loaded.processor
        p0 = next(model.parameters())
        # keep every frame's image features (up to VISION_CACHE_FRAMES): prompting runs the model on
        # the prompted frames and propagation visits them again, which would encode them twice
        session = proc.init_video_session(
            video=np.stack(list(frames)), inference_device=p0.device, dtype=p0.dtype,
            max_vision_features_cache_size=min(len(frames), VISION_CACHE_FRAMES),
        )

        def record(out: Any, only_before: int | None = None) -> None:
            f = int(out.frame_idx)
            if only_before is not None and f >= only_before:
                return
            self.runtime.count("sam2.propagated_frames")
            logits = proc.post_process_masks([out.pred_masks.float().cpu()], original_sizes=[[h, w]], binarize=False)[0]
            presence = torch.sigmoid(out.object_score_logits.float().reshape(-1)).cpu().numpy()
            for k, obj_id in enumerate(out.object_ids):
                tr = tracks[int(obj_id) - 1]
                if self.cfg.direction == "forward" and f < tr.frame:
                    continue
                tr.masks[f] = (logits[k, 0] > 0.0).numpy()
                tr.presence[f] = float(presence[k])

        with torch.inference_mode():
            for t in sorted(by_frame):
                ids = by_frame[t]
                p = proposals[t]
                with_mask = [i for i in ids if p.masks is not None and p.masks[i - ids[0]].any()]
                with_box = [i for i in ids if i not in with_mask]
                # one call per prompt kind: a session's "new inputs" are those of its last call
                if with_box:
                    proc.add_inputs_to_inference_session(
                        inference_session=session, frame_idx=t, obj_ids=[i + 1 for i in with_box],
                        input_boxes=[[p.boxes[i - ids[0]].tolist() for i in with_box]],
                    )
                    model(inference_session=session, frame_idx=t)
                if with_mask:
                    assert p.masks is not None
                    proc.add_inputs_to_inference_session(
                        inference_session=session, frame_idx=t, obj_ids=[i + 1 for i in with_mask],
                        input_masks=[p.masks[i - ids[0]] for i in with_mask],
                    )
                    model(inference_session=session, frame_idx=t)
            start = min(by_frame)
            for out in model.propagate_in_video_iterator(session, start_frame_idx=start):
                record(out)
            if self.cfg.direction == "both" and start > 0:
                for out in model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=True):
                    record(out, only_before=start)
        self.runtime.count("sam2.propagation_passes")
        self.runtime.count("sam2.propagated_objects", len(tracks))
        kept, merged = merge_tracks(tracks, self.cfg.merge_iou)
        self.runtime.count("sam2.merged_tracks", merged)
        return tracks_to_proposals(kept, len(frames), sizes, labelled)
