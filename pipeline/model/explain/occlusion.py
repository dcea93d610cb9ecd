"""Exact occlusion (leave one word out): what each word adds, measured by scoring the review without it.

weight(w) = F(x) - F(x without every occurrence of w), where F is the predicted class's logit
(binary: its log-odds), as for integrated gradients, and a word is a distinct token of the review
as `top_words` names it (an unknown word is its own word, not the vocabulary's unknown id). No
gradient and no approximation: each of a review's W distinct words costs one forward pass of the
review without it, on whichever engine scores the job (ONNX Runtime included), so it runs where
TensorFlow is not installed. A review of one distinct word gets F(x) itself for it (without it
nothing is left to score). Occlusion promises no sum, so it has no completeness error. Per token, a
word's weight is shared equally among its occurrences, so a review's per-token weights summed per
word give the word's weight.

Two ways to the same numbers:
- reusing the full pass (engines that offer a `Recurrence`: onnx with the bundle's occlusion.onnx,
  xla): removing w, whose first and last occurrences are at p and q, leaves the forward direction's
  state before p and the backward direction's state after q unchanged, so each direction starts from
  the full pass's state there and reads only the rest of the review (for a word said once, half the
  LSTM steps of re-scoring; less on whole reviews, where words said at both ends save little; what it
  gains: BENCHMARKS.md#occlusion-cost). The pooled readout's running max and sum start
  from the full pass's too. One row of work carries one forward and one backward job of similar
  length, and rows run in length order, so padding stays small (`_slices` cuts them into calls);
- re-scoring every occluded review (`brute_force`, any engine): the definition, and what a test
  compares the reuse with.
A wide-and-deep model's wide part (`pipeline.model.wide`) reads n-grams, which leaving a word out
changes around every occurrence (the n-grams across the gap are new), so it is not continued from
the full pass: each variant's whole review goes into the recurrence's call beside its jobs, and the
graph adds that review's wide logits to the first direction's share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.model.explain import OCCLUSION
from pipeline.model.explain.integrated_gradients import Attributions, class_logit
from pipeline.model.preprocessing import EncodedBatch, offsets_of
from pipeline.model.progress import WorkerCount
from pipeline.model.wide import WIDE_IDS

NOTHING_SEEN = np.float32(-np.inf)
"""The pooled readout's running max before any step: every real step replaces it (a job always has a
step before or after it, as a review of two words or more keeps one when one is left out)."""

REUSE_FROM_TOKENS = 20
"""Below this mean length (tokens per review of a chunk) re-scoring is as cheap as reusing states or
cheaper (BENCHMARKS.md#occlusion-cost), and a job of short texts never
opens the recurrence."""

__all__ = ["ROWS_PER_CALL", "Occlusion", "Recurrence", "brute_force", "full_pass_logits", "word_groups"]

ROWS_PER_CALL = 16_384
"""Occluded variants (one per distinct word) worked on together: the reviews' per-step states and
the variants' jobs are held for this many at once."""


class Recurrence(Protocol):
    """An engine's model with its recurrent states open: the contract of training/onnx_export.py's
    `occlusion_model` (its inputs and outputs, by name), on one padded slice of rows."""

    directions: int
    """1 (forward) or 2 (forward and backward)."""
    pooled: bool
    """Masked max and mean pooling over the steps (else: each direction's last state)."""
    wide: bool
    """A wide part beside the recurrence: each row also takes its first job's whole review (WIDE_IDS),
    whose wide logits the first share includes."""
    units: int
    batch_size: int
    """Rows per call, at most."""
    parallel_calls: int
    """Calls that run at once: fewer rows than batch_size x parallel_calls are cut into that many
    slices, so a few reviews (a sampled one alone in its batch) still use every thread; 1 where a
    smaller slice costs as much as a full one (a compiled static shape)."""

    def run(self, feeds: list[dict[str, np.ndarray]], states: bool) -> list[dict[str, np.ndarray]]:
        """Each slice's outputs: part{d}, and with `states` h{d}_steps and c{d}_steps (time, rows, units)."""
        ...


def word_groups(row: np.ndarray, words: Sequence[str] | None) -> tuple[int, np.ndarray]:
    """(distinct words, each token's word index in order of first occurrence); by id without words."""
    keys = row.tolist() if words is None else list(words)
    index: dict = {}
    inverse = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    return len(index), inverse


@dataclass
class _Jobs:
    """One direction's jobs: their token ids (in the order the direction reads them) and the state
    each starts from."""

    tokens: EncodedBatch
    variants: EncodedBatch | None
    """The whole review each job belongs to (the first direction's jobs of a wide model), else None."""
    h: np.ndarray
    c: np.ndarray
    top: np.ndarray
    total: np.ndarray
    count: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.tokens.lengths

    @classmethod
    def join(cls, parts: list[_Jobs]) -> _Jobs:
        variants = None if parts[0].variants is None else EncodedBatch.concatenate([p.variants for p in parts])
        return cls(
            EncodedBatch.concatenate([p.tokens for p in parts]),
            variants,
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("h", "c", "top", "total", "count")),
        )


class Occlusion:
    method = OCCLUSION

    def __init__(
        self,
        logits: Callable[[Sequence[np.ndarray]], np.ndarray],
        recurrence: Callable[[], Recurrence | None] | None = None,
        reuse_from_tokens: float = REUSE_FROM_TOKENS,
    ):
        self.logits = logits
        """The scoring engine's raw logits (CalibratedScorer.logits): (rows, outputs)."""
        self.open_recurrence = recurrence
        """Opens the engine's recurrence (CalibratedScorer.recurrence), on the first chunk long enough to
        reuse it; None, or a None it returns: every occluded review is re-scored."""
        self.reuse_from_tokens = reuse_from_tokens
        self._recurrence: Recurrence | None = None
        self._opened = False

    def recurrence_for(self, rows: Sequence[np.ndarray]) -> Recurrence | None:
        """The recurrence, if these reviews are long enough (on average) for reusing it to pay."""
        if self.open_recurrence is None or np.mean([len(r) for r in rows]) < self.reuse_from_tokens:
            return None
        if not self._opened:
            self._recurrence, self._opened = self.open_recurrence(), True
        return self._recurrence

    def __call__(
        self,
        rows: Sequence[np.ndarray],
        predicted: np.ndarray,
        logits=None,
        progress: WorkerCount | None = None,
        words: Sequence[Sequence[str]] | None = None,
    ) -> Attributions:
        """`logits`: the engine's logits of `rows`, when already computed by scoring; `progress` counts
        the reviews explained, chunk by chunk; `words`: each review's words (top_words'), which
        occlusion removes all occurrences of (without them: token ids)."""
        predicted = np.asarray(predicted)
        target = class_logit(self.logits(rows) if logits is None else logits, predicted)
        groups = [word_groups(row, None if words is None else words[i]) for i, row in enumerate(rows)]
        weights: list[np.ndarray] = []
        start = 0
        while start < len(rows):
            end, variants = start, 0
            while end < len(rows) and (variants == 0 or variants + groups[end][0] <= ROWS_PER_CALL):
                variants += groups[end][0]
                end += 1
            chunk = slice(start, end)
            recurrence = self.recurrence_for(rows[chunk])
            if recurrence is None:
                occluded = brute_force(self.logits, rows[chunk], groups[chunk], predicted[chunk])
            else:
                occluded = _reusing_states(recurrence, rows[chunk], groups[chunk], predicted[chunk])
            for row_target, variant_logits, (_, inverse) in zip(target[chunk], occluded, groups[chunk], strict=True):
                word = np.where(np.isnan(variant_logits), row_target, row_target - variant_logits)
                occurrences = np.bincount(inverse)
                weights.append((word[inverse] / occurrences[inverse]).astype(np.float32))
            if progress is not None:
                progress.add(end - start)
            start = end
        return Attributions(weights, target, None)


def _variant_rows(row: np.ndarray, inverse: np.ndarray, count: int) -> list[np.ndarray]:
    keep = inverse[None, :] != np.arange(count)[:, None]
    return [row[k] for k in keep]


def brute_force(logits, rows, groups, predicted) -> list[np.ndarray]:
    """Per review, F of each word's occluded review, by re-scoring it (NaN: nothing left to score)."""
    variants, owners = [], []
    for i, (row, (count, inverse)) in enumerate(zip(rows, groups, strict=True)):
        for variant in _variant_rows(row, inverse, count):
            if len(variant):
                variants.append(variant)
                owners.append(i)
    scored = class_logit(logits(variants), predicted[owners]) if variants else np.zeros(0, np.float32)
    return _per_review(scored, groups)


def _per_review(scored: np.ndarray, groups) -> list[np.ndarray]:
    """The variants' F cut per review (in word order); a review of one word gets NaN (nothing left)."""
    out, at = [], 0
    for count, _ in groups:
        if count == 1:
            out.append(np.full(1, np.nan, np.float32))
            continue
        out.append(scored[at : at + count])
        at += count
    return out


def _reusing_states(recurrence: Recurrence, rows, groups, predicted) -> list[np.ndarray]:
    """Per review, F of each word's occluded review, from the full pass's states (module docstring)."""
    states = _full_pass(recurrence, rows, states=True)[1]
    jobs: list[list[_Jobs]] = [[] for _ in states]
    for i, (row, (count, inverse)) in enumerate(zip(rows, groups, strict=True)):
        if count == 1:
            continue
        for d, direction in enumerate(states):
            jobs[d].append(_continuations(row, inverse, count, [s[i] for s in direction], recurrence, d == 1))
    if not jobs[0]:
        return _per_review(np.zeros(0, np.float32), groups)
    directions = [_Jobs.join(parts) for parts in jobs]
    # Pair the k-th shortest forward job with the k-th shortest backward one: similar lengths share a row.
    orders = [np.argsort(d.lengths, kind="stable") for d in directions]
    logits = _summed(_run(recurrence, directions, orders, states=False)[0], orders)
    owners = np.concatenate([np.full(count, i) for i, (count, _) in enumerate(groups) if count > 1])
    return _per_review(class_logit(logits, predicted[owners]), groups)


def full_pass_logits(recurrence: Recurrence, rows: Sequence[np.ndarray]) -> np.ndarray:
    """(rows, outputs) logits of whole reviews through the recurrence, its parts summed: what scoring
    gives, which is how an export proves its occlusion graph is the model."""
    return _full_pass(recurrence, rows, states=False)[0]


def _full_pass(recurrence: Recurrence, rows, states: bool):
    """Every review read whole by every direction from the zero state, in length order: (its logits,
    and with `states` each direction's per-review [h steps, c steps])."""
    full = [_start(rows, recurrence.units, d == 1, recurrence.wide) for d in range(recurrence.directions)]
    orders = [np.argsort(full[0].lengths, kind="stable")] * len(full)
    parts, steps = _run(recurrence, full, orders, states)
    return _summed(parts, orders), steps


def _summed(parts: list[np.ndarray], orders: list[np.ndarray]) -> np.ndarray:
    """Logits per job: each direction's parts (one per row, in row order) added at the jobs they ran."""
    logits = np.zeros_like(parts[0])
    for part, order in zip(parts, orders, strict=True):
        logits[order] += part
    return logits


def _start(rows, units: int, backward: bool, wide: bool) -> _Jobs:
    """Every review read whole (the backward direction reversed), from the zero state."""
    tokens = EncodedBatch.from_rows([r[::-1] if backward else r for r in rows])
    zeros = np.zeros((len(rows), units), np.float32)
    count = tokens.lengths.astype(np.float32)
    variants = tokens if wide and not backward else None
    return _Jobs(tokens, variants, zeros, zeros, np.full_like(zeros, NOTHING_SEEN), zeros, count)


def _continuations(row, inverse, count: int, steps, recurrence: Recurrence, backward: bool) -> _Jobs:
    """Direction's jobs for each word of one review: the tokens left after the word's first (forward)
    or last (backward) occurrence that are not the word, from the full pass's state just before it.

    `steps` are the full pass's per-step (h, c) of this direction, in its reading order."""
    length = len(row)
    others = inverse[None, :] != np.arange(count)[:, None]  # (words, tokens)
    variants = None
    if recurrence.wide and not backward:  # each word's occluded review, whole
        variants = EncodedBatch(np.broadcast_to(row, others.shape)[others].astype(np.int32), offsets_of(others.sum(1)))
    if backward:  # reads the review reversed: step s is token length - 1 - s
        row, others = row[::-1], others[:, ::-1]
    first = np.argmax(~others, axis=1)  # each word's first step in reading order
    reads = others & (np.arange(length) > first[:, None])
    tokens = EncodedBatch(np.broadcast_to(row, reads.shape)[reads].astype(np.int32), offsets_of(reads.sum(axis=1)))
    h_steps, c_steps = steps
    before = first - 1  # the full pass's step whose state the job starts from; -1: none
    started = (before >= 0)[:, None]
    at = np.maximum(before, 0)
    h = np.where(started, h_steps[at], 0.0).astype(np.float32)
    c = np.where(started, c_steps[at], 0.0).astype(np.float32)
    if recurrence.pooled:
        top = np.where(started, np.maximum.accumulate(h_steps, axis=0)[at], NOTHING_SEEN).astype(np.float32)
        total = np.where(started, np.cumsum(h_steps, axis=0)[at], 0.0).astype(np.float32)
    else:
        top = total = h
    remaining = length - np.bincount(inverse, minlength=count)
    return _Jobs(tokens, variants, h, c, top, total, remaining.astype(np.float32))


def _slices(widths: np.ndarray, batch_size: int, parallel_calls: int) -> list[np.ndarray]:
    """The calls' rows: runs of `batch_size` rows in order, or, for fewer rows than the threads can
    take at once, at most `parallel_calls` runs of about equal cost (rows x the longest row's
    steps), so a sampled review alone in its batch keeps every thread busy until it is done.

    `widths`: each row's steps, in non-decreasing order (rows run in length order)."""
    rows = len(widths)
    if parallel_calls == 1 or rows >= batch_size * parallel_calls or rows == 0:
        return [np.arange(s, min(s + batch_size, rows)) for s in range(0, rows, batch_size)]
    steps = np.maximum(widths, 1)

    def cut(limit: float) -> list[int]:  # from the longest rows down, each run costing at most limit
        starts, end = [], rows
        while end > 0:
            end -= max(1, min(end, int(limit // steps[end - 1])))
            starts.append(end)
        return starts[::-1]

    low, high = float(steps[-1]), float(steps[-1] * rows)  # the cost of the most expensive run
    while high - low > max(1.0, 0.01 * low):
        middle = (low + high) / 2
        low, high = (low, middle) if len(cut(middle)) <= parallel_calls else (middle, high)
    starts = cut(high)
    return [np.arange(a, b) for a, b in zip(starts, [*starts[1:], rows], strict=True)]


def _run(recurrence: Recurrence, directions: list[_Jobs], orders: list[np.ndarray], states: bool):
    """Run row k = (job orders[0][k] of direction 0, job orders[1][k] of direction 1, ...) in
    slices of `recurrence.batch_size`; returns each direction's part per row (row order), and with
    `states`, each direction's per-job [h steps, c steps] (in job order)."""
    widths = np.max([d.lengths[order] for d, order in zip(directions, orders, strict=True)], axis=0)
    slices = _slices(widths, recurrence.batch_size, recurrence.parallel_calls)
    feeds = []
    for members in slices:
        jobs = [order[members] for order in orders]
        width = max(1, *(int(d.lengths[j].max(initial=0)) for d, j in zip(directions, jobs, strict=True)))
        feed: dict[str, np.ndarray] = {}
        for k, (d, j) in enumerate(zip(directions, jobs, strict=True)):
            feed[f"ids{k}"] = d.tokens.take(j).padded(width)
            feed[f"h{k}"], feed[f"c{k}"] = d.h[j], d.c[j]
            if recurrence.pooled:
                feed[f"top{k}"], feed[f"total{k}"] = d.top[j], d.total[j]
                feed[f"count{k}"] = d.count[j][:, None]
        if recurrence.wide:
            variants = directions[0].variants.take(jobs[0])
            feed[WIDE_IDS] = variants.padded(max(1, int(variants.lengths.max(initial=0))))
        feeds.append(feed)
    outputs = recurrence.run(feeds, states)
    parts = [np.concatenate([o[f"part{k}"] for o in outputs]) for k in range(len(directions))]
    if not states:
        return parts, None
    per_job = []
    for k, d in enumerate(directions):
        h = [None] * len(d.lengths)
        c = [None] * len(d.lengths)
        for members, o in zip(slices, outputs, strict=True):
            for b, j in enumerate(orders[k][members]):
                n = int(d.lengths[j])
                h[j] = o[f"h{k}_steps"][:n, b]
                c[j] = o[f"c{k}_steps"][:n, b]
        per_job.append([h, c])
    return parts, per_job
