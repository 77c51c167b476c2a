"""The case registry behind ``umrf bench``: one line per sampler family.

A new family (e.g. discrete samplers) adds a module to ``umrf/bench/`` that
defines a tuple of :class:`~umrf.bench.Case` objects, and one line below.
Code outside umrf registers its own cases at run time with
:func:`umrf.bench.register`.
"""

from __future__ import annotations

from umrf.bench._core import Case
from umrf.bench._discrete import DISCRETE_CASES
from umrf.bench._gibbs import GIBBS_CASES
from umrf.bench._langevin import LANGEVIN_CASES

__all__ = ["CASES", "register"]

#: Case name -> :class:`~umrf.bench.Case`, in the order ``umrf bench`` runs them.
CASES: dict[str, Case] = {}


def register(case: Case) -> Case:
    """Add ``case`` to the suite (``umrf bench --only NAME`` then runs it).

    Raises:
      TypeError: ``case`` is not a :class:`~umrf.bench.Case`.
      ValueError: a case of that name is already registered.
    """
    if not isinstance(case, Case):
        raise TypeError(f"`case` must be a umrf.bench.Case; got {type(case).__name__}.")
    if case.name in CASES:
        raise ValueError(f"a bench case named {case.name!r} is already registered.")
    CASES[case.name] = case
    return case


for _case in (*LANGEVIN_CASES, *GIBBS_CASES, *DISCRETE_CASES):
    register(_case)
