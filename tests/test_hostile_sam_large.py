"""sam-grid on a frame larger than its working size (issue 26): SAM's automatic masks run at the
bounded working size and come back at the frame's size (memory: the large-frame bench row)."""

from __future__ import annotations

import numpy as np

from tests.deps import requires

requires("segment_anything")

from avseg_sam.grid import SamGridConfig, SamGridProposer, shrink  # noqa: E402
from segment_anything import SamAutomaticMaskGenerator  # noqa: E402

from avseg.runtime import Runtime  # noqa: E402


def test_large_frame_gives_frame_sized_masks_from_the_working_size() -> None:
    runtime = Runtime(device="cpu", tiny=True)
    settings = dict(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)
    grid = SamGridProposer(SamGridConfig(**settings, working_size=96), runtime)
    rng = np.random.default_rng(0)
    frame = np.repeat(np.repeat(rng.integers(0, 255, (21, 31, 3), dtype=np.uint8), 10, 0), 10, 1)  # 310x210
    seen: list[tuple[int, ...]] = []
    generate = grid.generator.generate
    grid.generator.generate = lambda image: seen.append(image.shape) or generate(image)  # type: ignore[method-assign]
    props = grid.propose([frame])[0]
    assert seen == [(65, 96, 3)]  # the generator saw the frame at the working size, not 210x310
    assert props.masks is not None and props.masks.shape == (len(props), 210, 310) and len(props) == 27
    # the same masks as the generator's at the working size, grown back (nearest neighbour)
    small = shrink(frame, 96)
    anns = SamAutomaticMaskGenerator(grid.loaded.model, **settings).generate(small)
    import cv2

    for m, ann in zip(props.masks, anns, strict=True):
        want = cv2.resize(ann["segmentation"].astype(np.uint8), (310, 210), interpolation=cv2.INTER_NEAREST) > 0
        np.testing.assert_array_equal(m, want)
    # boxes in the frame's coordinates
    assert props.boxes[:, [0, 2]].max() <= 310 + 1e-3 and props.boxes[:, [1, 3]].max() <= 210 + 1e-3
    ann0 = np.asarray(anns[0]["bbox"], np.float32)
    np.testing.assert_allclose(props.boxes[0, :2], ann0[:2] * np.float32([310 / 96, 210 / 65]), rtol=1e-5)


def test_small_frames_are_untouched() -> None:
    frame = np.zeros((50, 80, 3), np.uint8)
    assert shrink(frame, 1024) is frame
