"""Checks a job runs before it writes anything: models present, of their kind, fitting.

A failed start must never leave a folder that blocks the corrected command, so
everything that can be checked without computing is checked first, and every
model problem is reported in one message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virnucpro_app.errors import ModelLoadError

if TYPE_CHECKING:
    from virnucpro_app.config import ModelPaths


def check_models(
    models: ModelPaths, model_type: int, *, classifier: bool = True
) -> None:
    """Check that every model exists, is of its kind and that they fit together.

    Reads configs and headers only (no weights): the DNABERT-S folder's config,
    tokenizer and weights file, the ESM-2 file's ``cfg``, the classifier's
    header (width and chunk size).

    Args:
        models: The model locations.
        model_type: ``--model-type``: the classifier must be trained for it.
        classifier: Whether the job uses a classifier (``train`` makes one).

    Raises:
        ModelLoadError: Every problem found, in one message (a missing model
            "does not exist").
    """
    from virnucpro_app.models.classifier import classifier_facts
    from virnucpro_app.models.dnabert_files import dnabert_width
    from virnucpro_app.models.esm2_files import esm_width

    problems: list[str] = []
    widths: dict[str, int] = {}
    readers = (
        ("--dnabert", "DNABERT-S", models.dnabert, dnabert_width),
        ("--esm", "ESM-2", models.esm, esm_width),
    )
    for flag, name, location, reader in readers:
        try:
            widths[name] = reader(location)
        except ModelLoadError as error:
            problems.append(f"{flag} {error}")
    if classifier:
        try:
            facts = classifier_facts(models.classifier)
        except ModelLoadError as error:
            problems.append(f"--classifier {error}")
        else:
            size = facts.chunk_size
            if size is not None and size != model_type:
                problems.append(
                    f"{models.classifier} was trained on {size} bp chunks but "
                    f"--model-type is {model_type}: pass --model-type {size} or "
                    f"the {model_type} bp classifier"
                )
            total = sum(widths.values())
            if len(widths) == len(readers) and facts.input_dim != total:
                problems.append(
                    f"{models.classifier} expects {facts.input_dim}-wide features "
                    f"but DNABERT-S ({widths['DNABERT-S']}) + ESM-2 "
                    f"({widths['ESM-2']}) give {total}: the models do not belong "
                    "together"
                )
    if problems:
        raise ModelLoadError("; ".join(problems))
