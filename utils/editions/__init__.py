"""The DCASE Task 1 editions, each one object in one place, in a registry keyed by ``submission.edition``.

``REGISTRY`` holds the editions (2023, which also serves 2022; 2024; 2025: :mod:`utils.editions.dcase2023`,
``dcase2024``, ``dcase2025``), each an :class:`~utils.editions.base.Edition` owning its official protocol
(training / test items per mode, model selection, where a test clip's device comes from, the package, its
meta template and validator rules, complexity limits and parameter precision, energy block, README row).
:func:`of` gives the edition of a set's parameters; :func:`register` adds one (a new year, or a toy one in
a test) and lets ``submission.edition`` accept it, without touching the pipeline, the stages or the
parameters module. :func:`apply_protocol` fills the parameters a set leaves ``null`` with its edition's.
"""

from __future__ import annotations

from utils.editions.base import Edition
from utils.errors import Task1aError

REGISTRY: dict[int, Edition] = {}

__all__ = ["Edition", "REGISTRY", "register", "unregister", "get", "of", "apply_protocol", "readme_table"]


def _sync_parameter_rule() -> None:
    """``submission.edition`` accepts exactly the registered years (the parameter registry's rule)."""
    from utils import parameters

    parameters.RULES["submission.edition"] = parameters.choice(*sorted(REGISTRY))


def register(edition: Edition) -> Edition:
    """Add ``edition`` under its year (replacing one of the same year); returns it."""
    if not isinstance(edition, Edition):
        raise TypeError(f"register() takes an Edition, got {type(edition).__name__}")
    REGISTRY[edition.year] = edition
    _sync_parameter_rule()
    return edition


def unregister(year: int) -> None:
    """Remove a registered edition (a test's toy one)."""
    REGISTRY.pop(year, None)
    _sync_parameter_rule()


def get(year) -> Edition:
    """The edition of ``year``; one-line error naming the known ones otherwise."""
    if isinstance(year, bool) or year not in REGISTRY:
        raise Task1aError(f"submission.edition {year!r} is unknown; choose one of {', '.join(map(str, sorted(REGISTRY)))}")
    return REGISTRY[year]


def of(params: dict) -> Edition:
    """The edition a set's resolved parameters name (``submission.edition``)."""
    return get(params["submission"]["edition"])


def apply_protocol(params: dict) -> dict:
    """Fill the protocol parameters ``params`` leaves null with its edition's (an unknown edition is left to
    the value check, which names it)."""
    edition = REGISTRY.get((params.get("submission") or {}).get("edition"))
    return edition.apply_protocol(params) if edition is not None else params


def readme_table() -> str:
    """The README's table of the editions: one row each (:attr:`Edition.readme_row`)."""
    header = ("| edition | training (dev mode) | development test | training (challenge mode) | evaluation | parameter memory | energy block |\n"
              "|---|---|---|---|---|---|---|")
    return "\n".join([header] + [REGISTRY[year].readme_row for year in sorted(REGISTRY)])


def _register_builtin() -> None:
    from utils.editions import dcase2023, dcase2024, dcase2025

    for module in (dcase2023, dcase2024, dcase2025):
        register(module.EDITION)


_register_builtin()
