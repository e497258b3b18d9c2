"""Object-detection evaluation: mAP as COCO computes it (our own matcher, equal to
pycocotools, fast enough to bootstrap over images), counts per image, confused classes,
misses and false boxes by size, and the plots of these. Entry point: ``detection_metrics``."""

from deepfit.evaluate.detection.metrics import (DetectionMetrics, choose_score_threshold,
                                                detection_metrics)

__all__ = ["DetectionMetrics", "choose_score_threshold", "detection_metrics"]
