"""The tiny mmdet variant: a Mask R-CNN built from an mmdet config written here, small sizes.

Same mmdet classes as the real ``mask-rcnn_r50_fpn_1x_coco`` (ResNet + FPN + RPNHead +
StandardRoIHead with Shared2FCBBoxHead and FCNMaskHead), but a ResNet-18 with 16 base
channels, 32-channel FPN/heads, 5 classes and a 128x128 test resize. Weights are PyTorch's
default random initialisation seeded with ``runtime.seed``; nothing is downloaded.

Few classes on purpose: with 80 classes a random classifier's softmax scores (~1/81) all fall
under Mask R-CNN's own ``rcnn.score_thr=0.05`` and the model would never output anything.
"""

from __future__ import annotations

from typing import Any

#: the tiny model's class names (index -> name)
TINY_CLASSES = ("person", "dog", "cat", "car", "bird")
#: the tiny test pipeline resizes (keep ratio) to fit this (w, h)
TINY_SCALE = (128, 128)


def tiny_config_dict() -> dict[str, Any]:
    """The tiny model and test pipeline as a plain mmdet config dict."""
    nc = len(TINY_CLASSES)
    ch = 32
    return dict(
        default_scope="mmdet",
        model=dict(
            type="MaskRCNN",
            data_preprocessor=dict(
                type="DetDataPreprocessor",
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
                pad_mask=True,
                pad_size_divisor=32,
            ),
            backbone=dict(
                type="ResNet",
                depth=18,
                base_channels=16,
                num_stages=4,
                out_indices=(0, 1, 2, 3),
                frozen_stages=1,
                norm_cfg=dict(type="BN", requires_grad=True),
                norm_eval=True,
                style="pytorch",
                init_cfg=None,
            ),
            neck=dict(type="FPN", in_channels=[16, 32, 64, 128], out_channels=ch, num_outs=5),
            rpn_head=dict(
                type="RPNHead",
                in_channels=ch,
                feat_channels=ch,
                anchor_generator=dict(
                    type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]
                ),
                bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type="L1Loss", loss_weight=1.0),
            ),
            roi_head=dict(
                type="StandardRoIHead",
                bbox_roi_extractor=dict(
                    type="SingleRoIExtractor",
                    roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                    out_channels=ch,
                    featmap_strides=[4, 8, 16, 32],
                ),
                bbox_head=dict(
                    type="Shared2FCBBoxHead",
                    in_channels=ch,
                    fc_out_channels=64,
                    roi_feat_size=7,
                    num_classes=nc,
                    bbox_coder=dict(
                        type="DeltaXYWHBBoxCoder",
                        target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2],
                    ),
                    reg_class_agnostic=False,
                    loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                    loss_bbox=dict(type="L1Loss", loss_weight=1.0),
                ),
                mask_roi_extractor=dict(
                    type="SingleRoIExtractor",
                    roi_layer=dict(type="RoIAlign", output_size=14, sampling_ratio=0),
                    out_channels=ch,
                    featmap_strides=[4, 8, 16, 32],
                ),
                mask_head=dict(
                    type="FCNMaskHead",
                    num_convs=2,
                    in_channels=ch,
                    conv_out_channels=ch,
                    num_classes=nc,
                    loss_mask=dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0),
                ),
            ),
            train_cfg=None,  # inference only
            test_cfg=dict(
                rpn=dict(
                    nms_pre=200, max_per_img=50, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0
                ),
                rcnn=dict(
                    score_thr=0.05,
                    nms=dict(type="nms", iou_threshold=0.5),
                    max_per_img=20,
                    mask_thr_binary=0.5,
                ),
            ),
        ),
        # not used by the proposer; DetInferencer needs one (the bundled configs inherit it)
        visualizer=dict(
            type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")], name="visualizer"
        ),
        test_dataloader=dict(
            dataset=dict(
                type="CocoDataset",
                metainfo=dict(classes=TINY_CLASSES),
                test_mode=True,
                pipeline=[
                    dict(type="LoadImageFromFile"),
                    dict(type="Resize", scale=TINY_SCALE, keep_ratio=True),
                    dict(
                        type="PackDetInputs",
                        meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
                    ),
                ],
            )
        ),
    )


def tiny_config() -> Any:
    """The tiny config as an ``mmengine.Config``."""
    from mmengine.config import Config

    return Config(tiny_config_dict())
