"""The UAI file format: ``.uai`` models and ``.evid`` evidence (the PGM field's exchange format).

A model file (UAI 2008-2022 inference competitions; read by toulbar2, libDAI,
Merlin, pyGMs and pgmpy) is a *preamble* and *function tables*, all tokens
separated by white space (line breaks are white space too)::

    MARKOV            network type: MARKOV or BAYES
    3                 number of variables n
    2 2 3             their cardinalities
    2                 number of functions (factors; for BAYES: CPTs)
    2 0 1             per function: scope size, then the variables
    3 0 1 2           (BAYES: the child last, after its parents)

    4                 per function, in the same order: number of entries,
     4.0 2.4          then the table with the LAST scope variable changing
     1.0 0.0          fastest (C order)
    12
     ...

Entries are potentials ``ψ ≥ 0`` (``0`` is a hard zero, read as a log-potential
of ``−inf``). Lines starting with ``c`` (UAI 2016 comments) and text after ``#``
(accepted by pgmpy) are comments. A ``BAYES`` file is read as the product of its
CPTs on the moral graph (so ``log Z = 0`` when every CPT is normalised).

An evidence file (``.evid``) is one line ``k v_1 x_1 … v_k x_k`` (UAI 2014 on);
the older form with a leading number of evidence sets is accepted when it
holds exactly one set.

``write_uai`` writes ``MARKOV`` files atomically: the text goes to a temporary
file in the target's directory, is flushed and ``fsync``-ed, then renamed over
the target, so a crash never leaves a half-written model.

References:
  UAI 2014 inference competition, "Model format" and "Evidence format",
  http://www.hlt.utdallas.edu/~vgogate/uai14-competition/modelformat.html
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from umrf.models._discrete_mrf import DiscreteMRF, Factor

__all__ = ["read_uai", "read_uai_evidence", "write_uai"]


class _Tokens:
    """White-space tokens of a file with their line numbers; errors name the line."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text()
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not a text file ({err}).") from None
        items: list[tuple[str, int]] = []
        for no, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0]
            stripped = line.strip()
            if not stripped or stripped[0] in "cC":  # empty, or a UAI 2016 comment line
                continue
            items.extend((tok, no) for tok in stripped.split())
        self.items = items
        self.pos = 0
        self.last_line = len(text.splitlines())

    def error(self, message: str, line: int | None = None) -> ValueError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else self.last_line
        return ValueError(f"{self.path}, line {line}: {message}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise ValueError(
                f"{self.path}, line {self.last_line} (end of file): the file is truncated; "
                f"expected {what}."
            )
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def integer(self, what: str, *, low: int = 0, high: int | None = None) -> int:
        tok, line = self.next(what)
        try:
            value = int(tok)
        except ValueError:
            raise self.error(f"expected {what} (an integer), got {tok!r}.", line) from None
        if value < low or (high is not None and value > high):
            bound = f"in {low}..{high}" if high is not None else f">= {low}"
            raise self.error(f"{what} must be {bound}; got {value}.", line)
        return value

    def numbers(self, count: int, what: str) -> tuple[np.ndarray, int]:
        if self.pos + count > len(self.items):
            have = len(self.items) - self.pos
            raise ValueError(
                f"{self.path}, line {self.last_line} (end of file): the file is truncated; "
                f"{what} needs {count} entries but only {have} remain."
            )
        chunk = self.items[self.pos : self.pos + count]
        self.pos += count
        out = np.empty(count, np.float64)
        for i, (tok, line) in enumerate(chunk):
            try:
                out[i] = float(tok)
            except ValueError:
                raise self.error(f"{what}: entry {tok!r} is not a number.", line) from None
            if not math.isfinite(out[i]):
                raise self.error(f"{what}: entry {tok!r} is not finite.", line)
            if out[i] < 0:
                raise self.error(
                    f"{what}: entry {tok} is negative; potentials must be >= 0 (0 is a hard zero).",
                    line,
                )
        return out, chunk[0][1] if chunk else self.last_line

    def rest(self) -> Iterator[tuple[str, int]]:
        return iter(self.items[self.pos :])


def _as_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`{name}` must be a str or os.PathLike; got {type(path).__name__}.")
    return Path(path)


def read_uai(path: str | os.PathLike) -> DiscreteMRF:
    r"""Read a ``.uai`` model (``MARKOV`` or ``BAYES``) as a :class:`DiscreteMRF`.

    Factor ``k`` of the result is function ``k`` of the file, with the file's
    scope order and table layout (last scope variable fastest); potentials
    become log-potentials (``0 → −inf``). The model's graph is the union of the
    scopes' cliques (for ``BAYES``, the moral graph).

    Args:
      path: the file.

    Returns:
      The model.

    Raises:
      TypeError: ``path`` is not a path.
      FileNotFoundError: no such file.
      ValueError: a malformed file; the message names the line: an unknown
        network type, wrong counts (a variable index out of range, a scope
        repeating a variable, a table whose number of entries does not match
        its scope), negative or non-numeric entries, a truncated file, extra
        content after the last table, or (``BAYES``) a variable with two CPTs
        or a directed cycle.

    Examples:
      >>> import tempfile, os, math
      >>> d = tempfile.mkdtemp()
      >>> p = os.path.join(d, "two.uai")
      >>> _ = open(p, "w").write("MARKOV\n2\n2 2\n1\n2 0 1\n\n4\n 1 2\n 3 4\n")
      >>> mrf = read_uai(p)
      >>> mrf.cardinalities, mrf.scopes
      ((2, 2), ((0, 1),))
      >>> import umrf
      >>> round(math.exp(float(umrf.inference.log_partition(mrf))), 4)  # 1 + 2 + 3 + 4
      10.0
    """
    path = _as_path(path)
    toks = _Tokens(path)
    kind, line = toks.next("the network type (MARKOV or BAYES)")
    kind_u = kind.upper()
    if kind_u not in ("MARKOV", "BAYES"):
        raise toks.error(
            f"the network type must be MARKOV or BAYES; got {kind!r}. (umrf reads dense "
            "UAI models; SPARSEMARKOV/SPARSEBAYES are not supported.)",
            line,
        )
    n = toks.integer("the number of variables")
    cards = [toks.integer(f"the cardinality of variable {i}", low=1) for i in range(n)]
    num_functions = toks.integer("the number of functions")
    scopes: list[tuple[tuple[int, ...], int]] = []
    for k in range(num_functions):
        size = toks.integer(f"the scope size of function {k}", high=n)
        first = toks.pos
        scope = tuple(
            toks.integer(f"variable {j} of function {k}'s scope", high=n - 1) for j in range(size)
        )
        line = toks.items[first][1] if size else toks.items[toks.pos - 1][1]
        if len(set(scope)) != len(scope):
            raise toks.error(f"function {k}'s scope {scope} repeats a variable.", line)
        scopes.append((scope, line))
    factors = []
    for k, (scope, _) in enumerate(scopes):
        want = math.prod(cards[v] for v in scope)
        count_tok = toks.pos
        count = toks.integer(f"the number of entries of function {k}'s table")
        if count != want:
            raise toks.error(
                f"function {k}'s table has {count} entries but its scope {scope} with "
                f"cardinalities {tuple(cards[v] for v in scope)} needs {want}.",
                toks.items[count_tok][1],
            )
        values, _ = toks.numbers(count, f"function {k}'s table")
        table = values.reshape(tuple(cards[v] for v in scope))
        factors.append(Factor.from_potential(scope, table))
    extra = next(toks.rest(), None)
    if extra is not None:
        raise toks.error(
            f"unexpected content {extra[0]!r} after the last of {num_functions} tables "
            "(wrong function count?).",
            extra[1],
        )
    if kind_u == "BAYES":
        _check_bayes(toks, scopes, n)
    return DiscreteMRF(cards, factors)


def _check_bayes(toks: _Tokens, scopes, n: int) -> None:
    child_line: dict[int, int] = {}
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    for k, (scope, line) in enumerate(scopes):
        if not scope:
            raise toks.error(f"BAYES function {k} has an empty scope; a CPT needs its child.", line)
        child = scope[-1]
        if child in child_line:
            raise toks.error(
                f"BAYES function {k} is a second CPT of variable {child} (the child is the last "
                f"variable of a scope; the first CPT is on line {child_line[child]}).",
                line,
            )
        child_line[child] = line
        dag.add_edges_from((p, child) for p in scope[:-1])
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return
    raise ValueError(
        f"{toks.path}: the BAYES network has a directed cycle {cycle}; list each CPT's child "
        "last and its parents before it."
    )


def read_uai_evidence(path: str | os.PathLike) -> dict[int, int]:
    r"""Read a ``.evid`` evidence file as ``{variable: state}``.

    The format is ``k v_1 x_1 … v_k x_k`` (UAI 2014 on); the older layout with a
    leading number of evidence sets is read when it holds one set. Pass the
    result to :meth:`DiscreteMRF.condition`, which checks the states against the
    cardinalities.

    Args:
      path: the file.

    Returns:
      The observed states (an empty dict for ``0``).

    Raises:
      TypeError: ``path`` is not a path.
      FileNotFoundError: no such file.
      ValueError: a malformed file (the message names the line): non-integers,
        negative indices, a count that does not match the pairs, several
        evidence sets, or one variable observed twice.

    Examples:
      >>> import tempfile, os
      >>> p = os.path.join(tempfile.mkdtemp(), "m.uai.evid")
      >>> _ = open(p, "w").write("2 1 0 2 1\n")
      >>> read_uai_evidence(p)
      {1: 0, 2: 1}
    """
    path = _as_path(path)
    toks = _Tokens(path)
    values = []
    for tok, line in toks.items:
        try:
            v = int(tok)
        except ValueError:
            raise toks.error(f"expected an integer, got {tok!r}.", line) from None
        if v < 0:
            raise toks.error(f"indices and states must be >= 0; got {v}.", line)
        values.append((v, line))
    if not values:
        raise ValueError(
            f"{path}, line {toks.last_line} (end of file): the file is empty; expected the "
            "number of observed variables."
        )
    k = values[0][0]
    if len(values) == 1 + 2 * k:
        pairs = values[1:]
    elif len(values) >= 2 and len(values) == 2 + 2 * values[1][0] and k == 1:
        pairs = values[2:]  # one evidence set in the older multi-set layout
    elif k > 1 and len(values) > 1 + 2 * k:
        raise toks.error(
            f"the file holds {k} evidence sets (older layout); umrf reads one. Split the file.",
            values[0][1],
        )
    else:
        raise toks.error(
            f"the file announces {k} observed variables, which needs {1 + 2 * k} integers, "
            f"but it has {len(values)}.",
            values[0][1],
        )
    out: dict[int, int] = {}
    for i in range(0, len(pairs), 2):
        (v, line), (x, _) = pairs[i], pairs[i + 1]
        if v in out and out[v] != x:
            raise toks.error(f"variable {v} is observed twice ({out[v]} and {x}).", line)
        out[v] = x
    return out


def _format(x: float) -> str:
    return repr(float(x))


def write_uai(path: str | os.PathLike, mrf: DiscreteMRF) -> None:
    r"""Write ``mrf`` as a ``MARKOV`` ``.uai`` file, atomically.

    Potentials ``exp(θ)`` are written in float64 with the shortest decimal that
    reads back to the same double, so :func:`read_uai` returns the same model up
    to one rounding of ``log(exp(θ))``. The text is written to a temporary file
    next to ``path``, flushed, ``fsync``-ed and renamed over ``path`` (then the
    directory is synced): either the old file or the complete new one exists,
    never a partial one.

    Args:
      path: the target file (its directory must exist).
      mrf: the model (concrete tables).

    Raises:
      TypeError: ``path`` is not a path, ``mrf`` is not a ``DiscreteMRF``, or its
        tables are traced.
      ValueError: a finite log-potential whose potential float64 cannot hold
        (``θ`` outside about ``[−708, 709]``): rescale the factor first.
      OSError: the directory cannot be written (the target is left untouched).

    Examples:
      >>> import tempfile, os
      >>> import jax.numpy as jnp
      >>> from umrf.models import DiscreteMRF, Factor
      >>> p = os.path.join(tempfile.mkdtemp(), "m.uai")
      >>> write_uai(p, DiscreteMRF([2], [Factor((0,), jnp.log(jnp.array([1.0, 3.0])))]))
      >>> print(open(p).read().split("\n")[:5])
      ['MARKOV', '1', '2', '1', '1 0']
      >>> read_uai(p).scopes
      ((0,),)
    """
    path = _as_path(path)
    if not isinstance(mrf, DiscreteMRF):
        raise TypeError(f"`mrf` must be a umrf.models.DiscreteMRF; got {type(mrf).__name__}.")
    from umrf._validation import is_concrete

    if not is_concrete(mrf):
        raise TypeError("`mrf` has traced tables; write_uai needs concrete numbers (outside jit).")
    tiny = np.finfo(np.float64).tiny
    lines = ["MARKOV", str(mrf.num_variables), " ".join(str(k) for k in mrf.cardinalities)]
    lines.append(str(len(mrf.factors)))
    lines += [" ".join(str(v) for v in (len(f.scope), *f.scope)) for f in mrf.factors]
    lines.append("")
    for k, f in enumerate(mrf.factors):
        theta = np.asarray(f.log_potential, np.float64).reshape(-1)
        with np.errstate(over="ignore", under="ignore"):
            psi = np.exp(theta)
        finite = np.isfinite(theta)
        bad = finite & ((psi < tiny) | ~np.isfinite(psi))
        if np.any(bad):
            worst = float(theta[bad][0])
            raise ValueError(
                f"`mrf` factor {k} has log-potential {worst:.6g}, whose potential exp(θ) float64 "
                "cannot represent in the UAI format (θ must be in about [-708, 709] or -inf); "
                "subtract a constant from the factor first (this shifts log Z by it)."
            )
        lines.append(str(theta.size))
        lines.append(" " + " ".join(_format(x) for x in psi))
        lines.append("")
    text = "\n".join(lines)
    _atomic_write(path, text)


def _atomic_write(path: Path, text: str) -> None:
    directory = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
