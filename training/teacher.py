"""The teacher: diverse models combined, whose soft labels train the deployed model (distillation).

The deployed model must stay one BiLSTM (both compiled engines, the ONNX export, drift profiles
and explanations read it), yet an n-gram model and a few BiLSTM runs combined label reviews better
than any one of them: they make different mistakes. So they are combined offline into a teacher,
the teacher labels the training reviews and unlabelled reviews of the same kind, and the student
(today's architecture) learns those soft labels: it inherits much of the combination's accuracy at
one network's scoring cost.

Members report natural-log class probabilities on every part; the combination is a weighted sum
of them plus a bias per class, a softmax of which is the teacher's probabilities. Weights and
biases are chosen by log loss on the validation part (movies no member trained on); the
calibration part stays unseen by members, weights and student, so its figures are held out.

Teacher outputs cost most of a distilled training run, so they are cached by the fingerprint of
everything they depend on (`TeacherCache`): a rerun with the same data and settings distils at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from training.config import TeacherSettings

__all__ = [
    "PARTS",
    "Member",
    "Teacher",
    "TeacherCache",
    "combine",
    "teacher_settings_record",
    "timed_member",
]

PARTS = ("train", "validation", "calibration", "unlabelled")
"""Every part a member scores: the targets are the train and unlabelled parts' teacher probabilities."""


@dataclass(frozen=True)
class Member:
    name: str
    log_probabilities: Mapping[str, np.ndarray]
    """(texts, classes) natural-log probabilities for each of PARTS."""
    seconds: float


@dataclass(frozen=True)
class Teacher:
    """The combined members: their weights and the teacher's probabilities on every part."""

    members: tuple[Member, ...]
    weights: np.ndarray
    """One weight per member."""
    bias: np.ndarray
    """One per class."""

    def log_probabilities(self, part: str) -> np.ndarray:
        combined = sum(w * m.log_probabilities[part] for w, m in zip(self.weights, self.members, strict=True))
        return log_softmax(combined + self.bias, axis=1)

    def probabilities(self, part: str) -> np.ndarray:
        return np.exp(self.log_probabilities(part))

    def record(self, labels: Mapping[str, np.ndarray], figures: Callable[[np.ndarray, np.ndarray], dict]) -> dict:
        """What the manifest and the model card show: each member's and the teacher's figures on the
        validation part (the weights were chosen on it) and the calibration part (held out)."""
        held = ("validation", "calibration")
        return {
            "members": [
                {
                    "name": member.name,
                    "weight": round(float(weight), 4),
                    "seconds": round(member.seconds, 1),
                    **{part: figures(labels[part], np.exp(member.log_probabilities[part])) for part in held},
                }
                for member, weight in zip(self.members, self.weights, strict=True)
            ],
            "bias": [round(float(b), 4) for b in self.bias],
            **{part: figures(labels[part], self.probabilities(part)) for part in held},
        }


def combine(members: list[Member], validation_labels: np.ndarray) -> Teacher:
    """The weights and biases of least log loss on the validation part (L-BFGS; a weight starts at
    1/len(members), a bias at 0)."""
    logs = np.stack([m.log_probabilities["validation"] for m in members])  # members, texts, classes
    labels = np.asarray(validation_labels, dtype=np.int64)
    rows = np.arange(len(labels))
    classes = logs.shape[2]

    def loss(params: np.ndarray) -> float:
        weights, bias = params[: len(members)], params[len(members) :]
        combined = log_softmax(np.tensordot(weights, logs, axes=1) + bias, axis=1)
        return -float(combined[rows, labels].mean())

    start = np.concatenate([np.full(len(members), 1.0 / len(members)), np.zeros(classes)])
    fitted = minimize(loss, start, method="L-BFGS-B").x
    return Teacher(tuple(members), fitted[: len(members)], fitted[len(members) :])


class TeacherCache:
    """Each member's outputs on every part, as plain arrays (`.npz`, loaded without pickle), under a
    key of everything they depend on: the data's fingerprints, the preprocessing, the member's
    settings and the recipe that trains BiLSTM members."""

    def __init__(self, folder: Path, depends_on: dict[str, Any]):
        self.folder = folder
        self.digest = hashlib.sha256(json.dumps(depends_on, sort_keys=True, default=str).encode()).hexdigest()

    def file(self, member: str) -> Path:
        key = hashlib.sha256(f"{self.digest}:{member}".encode()).hexdigest()[:24]
        return self.folder / f"teacher-{key}.npz"

    def load(self, member: str) -> Member | None:
        path = self.file(member)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as cached:
            outputs = {part: cached[part] for part in PARTS}
            return Member(member, outputs, float(cached["seconds"]))

    def save(self, member: Member) -> Path:
        path = self.file(member.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, seconds=np.float64(member.seconds), **dict(member.log_probabilities))
        partial.replace(path)
        return path


def teacher_settings_record(settings: TeacherSettings) -> dict[str, Any]:
    return {"members": settings.member_names(), **asdict(settings)}


def timed_member(name: str, outputs: Callable[[], Mapping[str, np.ndarray]]) -> Member:
    started = time.perf_counter()
    log_probabilities = outputs()
    return Member(name, log_probabilities, time.perf_counter() - started)
