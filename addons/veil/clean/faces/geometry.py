"""Boxes found by the detector, and the geometry that merges them (overlaps, suppression)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in integer pixels, x1/y1 exclusive (PIL boxes)

# A box with at least this share of its area inside a larger box is taken as part of it.
NESTED_BOX_CONTAINMENT = 0.8


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the pixels of the image passed in
    score: float

    def to_dict(self) -> dict:
        return {"box": [round(v) for v in self.box], "score": round(self.score, 3)}


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def _intersections(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Area shared by one box and each of `boxes`."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return np.maximum(width, 0) * np.maximum(height, 0)


def ious(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    shared = _intersections(box, boxes)
    union = _areas(box[None, :])[0] + _areas(boxes) - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression, best score first.

    Returns the indices kept and, for each, the union of its box with those it suppressed
    (callers that want the plain best box ignore the second).
    """
    order = np.argsort(-scores, kind="stable")
    kept, unions = [], []
    while order.size:
        best, rest = order[0], order[1:]
        same_face = ious(boxes[best], boxes[rest]) > iou_threshold
        group = boxes[np.concatenate(([best], rest[same_face]))]
        kept.append(best)
        unions.append([*group[:, :2].min(axis=0), *group[:, 2:].max(axis=0)])
        order = rest[~same_face]
    return np.asarray(kept, dtype=np.intp), np.asarray(unions, dtype=np.float64).reshape(-1, 4)


@dataclass
class Detections:
    """Boxes (N x 4, x0 y0 x1 y1) and scores (N) in some stated coordinate frame."""

    boxes: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float64), np.zeros(0, np.float64))

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]))

    def shifted(self, dx: float, dy: float) -> Detections:
        return Detections(self.boxes + (dx, dy, dx, dy), self.scores)

    def scaled(self, sx: float, sy: float) -> Detections:
        """Divide by the per-axis scale a copy was resized with, back to the source's pixels."""
        return Detections(self.boxes / (sx, sy, sx, sy), self.scores)

    def clipped(self, width: float, height: float) -> Detections:
        boxes = np.clip(self.boxes, 0, (width, height, width, height))
        nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Detections(boxes[nonempty], self.scores[nonempty])

    def subset(self, mask: np.ndarray) -> Detections:
        return Detections(self.boxes[mask], self.scores[mask])

    def suppressed(self, iou_threshold: float) -> Detections:
        """One box per face: the best-scoring one."""
        kept, _ = _nms(self.boxes, self.scores, iou_threshold)
        return Detections(self.boxes[kept], self.scores[kept])

    def merged(self, iou_threshold: float) -> Detections:
        """One box per face, covering every box found for it (best score kept).

        For merging passes: their boxes for one face differ (a coarse copy tends to give a
        tighter box, missing the forehead), and a mask should cover what any of them saw.
        """
        kept, unions = _nms(self.boxes, self.scores, iou_threshold)
        return Detections(unions, self.scores[kept])

    def absorbed(self, containment: float = NESTED_BOX_CONTAINMENT) -> Detections:
        """Fold boxes lying mostly inside a larger box into it (grown to their union).

        A face too big for the finest pass comes back from it as a few partial boxes inside
        the whole-face box a coarser pass found: one face, not several. Growing the outer box
        to the union keeps every pixel either box covered.
        """
        boxes, scores = self.boxes, self.scores.copy()
        areas = _areas(boxes)
        kept: list[int] = []
        grown = boxes.copy()
        for index in np.argsort(-areas, kind="stable"):
            if kept:
                inside = _intersections(boxes[index], grown[kept]) >= containment * areas[index]
                if inside.any():
                    host = kept[int(np.argmax(inside))]
                    grown[host, :2] = np.minimum(grown[host, :2], boxes[index, :2])
                    grown[host, 2:] = np.maximum(grown[host, 2:], boxes[index, 2:])
                    scores[host] = max(scores[host], scores[index])
                    continue
            kept.append(int(index))
        kept.sort(key=lambda i: -scores[i])
        return Detections(grown[kept], scores[kept])

    @classmethod
    def best_of(cls, views: list[Detections], iou_threshold: float) -> Detections:
        """One box per face from several views of the picture (upright and turned), each
        already merged: where views found the same face, the view that scored it best gives
        the box. A face seen upright is also seen, weaker and with a looser box, turned (and
        the other way round); a union of those boxes would mask far more than the face."""
        every = cls.concat(views)
        kept, _ = _nms(every.boxes, every.scores, iou_threshold)
        return every.subset(np.sort(kept))

    def outscored_by(self, others: Detections, iou_threshold: float) -> np.ndarray:
        """Which of these boxes another box, overlapping it that much, scores at least as well."""
        beaten = np.zeros(len(self.scores), bool)
        for index, (box, score) in enumerate(zip(self.boxes, self.scores)):
            same_face = ious(box, others.boxes) > iou_threshold
            beaten[index] = bool((others.scores[same_face] >= score).any())
        return beaten

    def to_faces(self) -> list[Face]:
        return [
            Face(box=tuple(float(v) for v in box), score=float(score))
            for box, score in zip(self.boxes, self.scores)
        ]
