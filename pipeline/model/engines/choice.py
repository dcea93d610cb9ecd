"""Which engine scores a job: the one asked for if it can run here, else the 'auto' rule.

The engines do the same arithmetic with different libraries and differ in what they cost to start
and per review (BENCHMARKS.md#engine-choice). 'auto' runs, of the
engines that can run here (their bundle file present, their Python module installed), the one with
the highest `auto_from_reviews` the job reaches: the fastest per review whose start-up the job's
size pays for. A job of unknown size counts as large; one that reaches none of them runs the
cheapest to start. Where the engine chosen cannot reproduce the model, its `fallback` scores
(`calibrated.py`). With today's engines: 'onnx' (no TensorFlow, starts at once) below
XLA_FROM_REVIEWS reviews, 'xla' from there on if TensorFlow is installed ('keras' for architectures
it cannot reproduce); a bundle without model.onnx uses 'xla', a worker without TensorFlow 'onnx'.

'auto' is resolved where the model loads: in the launching process for a local runner, on each
worker for a remote one, whose environment (the job's image) is not the launcher's. This
docstring is the rule's one description; `--engine`'s help is generated from the registry
(`auto_help`).
"""

from __future__ import annotations

from collections.abc import Container
from itertools import pairwise

from pipeline.model.engines.base import BundleFile, Engine, EngineUnavailable, PythonModule
from pipeline.model.engines.registry import AUTO, ENGINES, registered


def auto_ladder() -> list[Engine]:
    """The engines 'auto' chooses from, by the job size from which each pays off (cheapest to start first)."""
    return sorted((e for e in ENGINES.values() if e.auto_from_reviews is not None), key=lambda e: e.auto_from_reviews)


def choose_engine(asked: str, bundle_files: Container[str], reviews: int | None = None) -> tuple[str, str]:
    """(engine, why) for a bundle holding `bundle_files` (its manifest's file names) and a job of
    `reviews` (None: unknown, counted as large).

    An explicit engine is kept, or EngineUnavailable says what it lacks here; 'auto' follows the
    rule in this module's docstring.
    """
    if asked == AUTO:
        return _auto(bundle_files, reviews)
    engine = registered(asked)
    file, module = _missing_file(engine, bundle_files), _missing_module(engine)
    if file is not None:
        writer = f" (needs {file.writer_needs.title})" if file.writer_needs else ""
        others = _names(e for e in ENGINES.values() if e.bundle_file != file)
        raise EngineUnavailable(
            f"this bundle has no {file.name}; write one with {file.written_by}{writer}, or score with --engine {others}"
        )
    if module is not None:
        others = _names(e for e in ENGINES.values() if e.module != module)
        raise EngineUnavailable(
            f"--engine {asked} needs {module.title}, which is not installed here; use --engine {others}, "
            f"or {module.install}"
        )
    return asked, "asked for"


def cheapest_engine(bundle_files: Container[str]) -> str:
    """The engine cheapest to start, if the bundle holds its file; else 'auto' (a launcher checks a
    bundle on it before remote workers choose their own)."""
    cheapest = auto_ladder()[0]
    return cheapest.name if _missing_file(cheapest, bundle_files) is None else AUTO


def needs_module(asked: str) -> PythonModule | None:
    """The Python module the engine asked for imports; None for 'auto' or an engine that needs none."""
    return None if asked == AUTO else registered(asked).module


def _auto(bundle_files: Container[str], reviews: int | None) -> tuple[str, str]:
    ladder = auto_ladder()
    files = _unique(_missing_file(e, bundle_files) for e in ladder)
    modules = _unique(_missing_module(e) for e in ladder)
    runnable = [e for e in ladder if _missing_file(e, bundle_files) is None and _missing_module(e) is None]
    if not runnable:
        lacking = [f"this bundle has no {f.name}" for f in files] + [f"{m.title} is not installed" for m in modules]
        # a module first: writing a missing file may need it
        remedies = [m.install for m in modules] + [f"write {f.name} with {f.written_by}" for f in files]
        raise EngineUnavailable(f"{' and '.join(lacking)}: nothing here can score it; {' or '.join(remedies)}")
    paid_for = [e for e in runnable if reviews is None or reviews >= e.auto_from_reviews]
    chosen = paid_for[-1] if paid_for else runnable[0]
    if files or modules:
        return chosen.name, "; ".join(
            [f"no {f.name} in the bundle" for f in files] + [f"{m.title} is not installed" for m in modules]
        )
    following = ladder[ladder.index(chosen) + 1 :]
    if following and reviews is not None:
        step = following[0]
        return chosen.name, (
            f"{reviews:,} reviews: fewer than {step.auto_from_reviews:,}, {step.title}'s start-up would not pay off"
        )
    return chosen.name, f"at least {chosen.auto_from_reviews:,} reviews"


def auto_help() -> str:
    """The 'auto' rule as `--engine`'s help states it (pipeline/job/options.py)."""
    ladder = auto_ladder()
    steps = []
    for engine, following in pairwise(ladder):
        unless = f" or where {following.module.title} is not installed" if following.module else ""
        steps.append(
            f"{engine.name} ({_described(engine)}) for jobs under {following.auto_from_reviews:,} reviews{unless}"
        )
    steps.append(f"{ladder[-1].name} ({_described(ladder[-1])})")
    return "auto: decided where the reviews are scored (on each worker, from what it has installed): " + (
        ", else ".join(steps) + "."
    )


def _described(engine: Engine) -> str:
    fallback = f"; {engine.fallback} for architectures it cannot reproduce" if engine.fallback else ""
    return engine.description + fallback


def _missing_file(engine: Engine, bundle_files: Container[str]) -> BundleFile | None:
    file = engine.bundle_file
    return file if file is not None and file.name not in bundle_files else None


def _missing_module(engine: Engine) -> PythonModule | None:
    module = engine.module
    return module if module is not None and not module.installed() else None


def _unique(items) -> list:
    return [item for item in dict.fromkeys(items) if item is not None]


def _names(engines) -> str:
    return " or ".join(engine.name for engine in engines)
