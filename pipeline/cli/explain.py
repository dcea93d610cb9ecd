"""`reviewscore explain`: the words that pushed one review towards its label, highlighted."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli.common import DEFAULT_MODEL, Verbose, console, fail, model_or_default, quiet_logging
from pipeline.model.explain import COMPLETENESS_TOLERANCE, MOST_STEPS, STEPS
from pipeline.model.explain import METHODS as EXPLAIN_METHODS

if TYPE_CHECKING:
    import numpy as np

# An Enum so --help lists the choices; pipeline.model.explain is cheap to import (no TensorFlow, no Beam).
ExplainMethod = StrEnum("ExplainMethod", [(m, m) for m in EXPLAIN_METHODS])
DEFAULT_EXPLAIN_METHOD = ExplainMethod(EXPLAIN_METHODS[0])
STEPS_HELP = (
    f"Integrated-gradients steps to start with; doubled (up to {MOST_STEPS:,}) until the attributions sum "
    f"to the logit difference within {COMPLETENESS_TOLERANCE:.0%}."
)


def explain(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The review to explain.")],
    model: Annotated[str, typer.Option(metavar="BUNDLE", help="Model bundle folder; local or gs://.")] = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(min=2, help=STEPS_HELP)] = STEPS,
    top: Annotated[int, typer.Option(min=1, help="Words to list.")] = 10,
    method: Annotated[
        ExplainMethod,
        typer.Option(
            metavar="METHOD",
            help="occlusion: a word's weight is how much the label's logit drops when the word is left out "
            "(no TensorFlow needed); integrated-gradients: gradients summed over --steps steps (needs TensorFlow).",
        ),
    ] = DEFAULT_EXPLAIN_METHOD,
    verbose: Verbose = False,
) -> None:
    """Show which words pushed a review towards its label: the text highlighted, then its strongest words.

    The review is scored as a one-review job would be (on ONNX Runtime where the bundle has model.onnx),
    so occlusion needs no TensorFlow; integrated gradients load it."""
    quiet_logging(verbose)
    model = model_or_default(model)
    from pipeline.job.locations import read_file
    from pipeline.model.bundle import BundleError, open_bundle
    from pipeline.model.engines.base import ScorerSettings
    from pipeline.model.engines.calibrated import bundle_scorer
    from pipeline.model.explain.explainer import (
        Explainer,
        ExplainSettings,
        ExplainUnavailable,
        explain_review,
        word_weights,
    )
    from pipeline.model.labels import Labels

    try:
        bundle = open_bundle(model, read_file)
        encoded, words = bundle.encoder.encode_words([text])
        if not len(encoded.ids):
            fail("the text has no words left after cleaning")
        scorer = bundle_scorer(bundle, ScorerSettings(), reviews=1)
        probabilities, logits = scorer.with_logits(encoded.rows())
        labels = Labels.of(bundle.manifest)
        predicted = labels.predicted(probabilities)
        explainer = Explainer(
            bundle,
            ExplainSettings(top, steps, method.value),
            scorer.logits,
            batch_size=1,
            recurrence=scorer.recurrence,
        )
        attributions, steps = explain_review(explainer, encoded.rows(), predicted, logits, words)
    except (BundleError, ExplainUnavailable) as e:
        fail(str(e))
    label = labels.class_names[int(predicted[0])]
    weights = attributions.weights[0]
    console.print(verdict(labels, probabilities[0], int(predicted[0])), highlight=False)
    console.print(f"[green]green[/] pushed towards {label}, [red]red[/] against it, the stronger the bolder:")
    console.print(highlighted(words[0], weights))
    table = Table(title="strongest words", title_justify="left")
    table.add_column("word")
    table.add_column("weight", justify="right")
    for word, weight in word_weights(words[0], weights)[:top]:
        table.add_row(word, f"[{'green' if weight > 0 else 'red'}]{weight:+.3f}[/]")
    console.print(table)
    error = float(attributions.completeness_error[0])
    if math.isnan(error):
        console.print(
            "occlusion: each weight is how much the predicted class's logit "
            f"({float(attributions.target_logit[0]):+.3f}) drops when that word is left out"
        )
        return
    delta = float(attributions.target_logit[0] - attributions.baseline_logit[0])
    console.print(
        f"the weights sum to {weights.sum():+.3f}; the predicted class's logit moved {delta:+.3f} from the "
        f"all-zero-embedding baseline (integrated gradients, {steps} steps: completeness error {error:.1%})"
    )


def verdict(labels, probabilities: np.ndarray, predicted: int) -> str:
    import numpy as np

    """The label with its own probability, and the score a job would write with what it means: for a
    binary bundle the score is the probability of its positive class, whichever label was predicted."""
    label = labels.class_names[predicted]
    score = float(labels.scores(probabilities[None, :], np.array([predicted]))[0])
    return (
        f"[bold]{label}[/], probability {float(probabilities[predicted]):.3f} "
        f"(score {score:.3f}: {labels.score_meaning})"
    )


def highlighted(words: list[str], weights: np.ndarray) -> Text:
    """The review's words coloured by the sign of their word's weight (summed over its occurrences),
    bolder the stronger."""
    from pipeline.model.explain.explainer import word_weights

    totals = dict(word_weights(words, weights))
    strongest = max((abs(v) for v in totals.values()), default=0.0) or 1.0
    shown = Text()
    for word in words:
        weight = totals[word]
        share = min(abs(weight) / strongest, 1.0)
        colour = "green" if weight > 0 else "red"
        shown.append(word, style=f"bold {colour}" if share > 0.5 else colour if share > 0.15 else "dim")
        shown.append(" ")
    return shown
