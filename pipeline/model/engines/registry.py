"""The scoring engines, by name: the one list that `--engine`, the 'auto' rule, `reviewscore info`,
explanations and the model handler read.

Adding an engine is one module declaring a small class (base.py's Engine) and one `register` line
below. Cheap to import: the engines' modules import their libraries only when a model loads.
"""

from __future__ import annotations

from pipeline.model.engines.base import Engine
from pipeline.model.engines.keras_engine import KerasEngine
from pipeline.model.engines.onnx_engine import OnnxEngine
from pipeline.model.engines.xla import XlaEngine

AUTO = "auto"
"""Not an engine: the choice left to the rule in choice.py."""
ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Make `engine` a choice under its name, for everything that reads the registry."""
    if engine.name == AUTO or engine.name in ENGINES:
        raise ValueError(f"an engine named {engine.name!r} is already registered")
    ENGINES[engine.name] = engine
    return engine


def unregister(name: str) -> Engine:
    """Withdraw an engine (a test's own, once the test is done)."""
    return ENGINES.pop(name)


def registered(name: str) -> Engine:
    """The engine `--engine name` names; ValueError lists the choices."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose one of: {', '.join(engine_choices())}")
    return ENGINES[name]


def engine_choices() -> tuple[str, ...]:
    """`--engine`'s choices: 'auto', then every engine registered, in registration order."""
    return (AUTO, *ENGINES)


register(OnnxEngine())
register(XlaEngine())
register(KerasEngine())
