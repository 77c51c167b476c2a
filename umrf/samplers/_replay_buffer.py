"""A pure, jit-able replay buffer of negative samples (JEM / IGEBM style).

Persistent negatives for contrastive divergence are kept in a fixed-size
buffer. Each training step reads a random batch of buffer entries, replaces
each one by a fresh draw from the reinitialisation distribution with
probability ``reinit_prob``, runs a few MCMC steps from them, and writes the
results back to the same indices (Du & Mordatch 2019; Grathwohl et al. 2020,
Alg. 1). The buffer's *state* is a pytree (:class:`ReplayBufferState`); the
:class:`ReplayBuffer` object only holds static configuration and pure
functions, so the whole read/sample/write-back step jits into one program and
can be checkpointed with the rest of a training state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from umrf._bind import bind
from umrf._validation import check_positive_int, check_probability

InitFn = Callable[[jax.Array, int], Any]


class ReplayBufferState(NamedTuple):
    """State of a replay buffer.

    Attributes:
      samples: stored configurations, a pytree whose leaves have leading
        axis ``capacity``.
      cursor: int32 scalar, the next slot written by :meth:`ReplayBuffer.push`
        (a ring buffer position; reads are uniform over all slots).
    """

    samples: Any
    cursor: jax.Array


def uniform_init(
    shape: Sequence[int], *, low: float = -1.0, high: float = 1.0, dtype: Any = jnp.float32
) -> InitFn:
    """Reinitialisation distribution ``Uniform(low, high)`` on arrays of ``shape``.

    JEM's choice (``[-1, 1]`` for images scaled to that range).

    Args:
      shape: shape of ONE configuration.
      low: keyword-only lower bound.
      high: keyword-only upper bound, ``> low``.
      dtype: keyword-only floating dtype of the draws.

    Returns:
      ``init_fn(key, n) -> array of shape (n, *shape)``.
    """
    shape = tuple(int(s) for s in shape)
    if not float(high) > float(low):
        raise ValueError(f"`high` ({high}) must exceed `low` ({low}).")

    return bind(_uniform_draw, shape=shape, low=float(low), high=float(high), dtype=dtype)


def _uniform_draw(
    key: jax.Array, n: int, *, shape: tuple[int, ...], low: float, high: float, dtype: Any
) -> jax.Array:
    return jax.random.uniform(key, (n, *shape), dtype=dtype, minval=low, maxval=high)


class ReplayBuffer:
    r"""Replay buffer of persistent negatives with random reinitialisation.

    ``sample`` draws ``batch_size`` indices uniformly from ``{0..capacity-1}``
    and returns the stored entries, each replaced with probability
    ``reinit_prob`` by a fresh draw of ``init_fn`` (JEM uses ``ρ = 0.05``
    and ``Uniform(-1, 1)``). After refining them with MCMC, ``update``
    writes them back to the same indices. ``push`` appends a batch at a
    ring-buffer cursor instead (IGEBM-style). All methods are pure and
    jit-able; the object itself is static configuration.

    Args:
      capacity: number of stored configurations (``>= 1``).
      init_fn: reinitialisation distribution ``init_fn(key, n) -> (n, ...)``
        (e.g. :func:`uniform_init`, or a data set / noise sampler).
      reinit_prob: keyword-only probability ``ρ ∈ [0, 1]`` of replacing a
        read entry by a fresh draw.

    Examples:
      >>> import jax, umrf
      >>> buf = umrf.samplers.ReplayBuffer(100, umrf.samplers.uniform_init((2,)))
      >>> state = buf.init(jax.random.key(0))
      >>> x, idx = buf.sample(jax.random.key(1), state, batch_size=8)
      >>> state = buf.update(state, idx, x + 0.1)  # write refined negatives back
      >>> x.shape, state.samples.shape
      ((8, 2), (100, 2))

    References:
      Du & Mordatch, *Implicit generation and modeling with energy-based
      models*, NeurIPS 2019. Grathwohl et al., *Your classifier is secretly
      an energy based model and you should treat it like one*, ICLR 2020.
    """

    __slots__ = ("capacity", "init_fn", "reinit_prob")

    def __init__(self, capacity: int, init_fn: InitFn, *, reinit_prob: float = 0.05) -> None:
        self.capacity = check_positive_int("capacity", capacity)
        if not callable(init_fn):
            raise TypeError(
                "`init_fn` must be a callable `init_fn(key, n) -> (n, ...)` sampling the "
                f"reinitialisation distribution; got {type(init_fn).__name__}."
            )
        check_probability("reinit_prob", reinit_prob, upper_inclusive=True)
        self.init_fn = init_fn
        self.reinit_prob = float(reinit_prob)

    def __repr__(self) -> str:
        return f"ReplayBuffer(capacity={self.capacity}, reinit_prob={self.reinit_prob})"

    def _key(self) -> tuple[Any, ...]:
        return (self.capacity, self.init_fn, self.reinit_prob)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplayBuffer) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def init(self, key: jax.Array, samples: Any = None) -> ReplayBufferState:
        """Fill the buffer with ``init_fn`` draws (or with given ``samples``).

        Args:
          key: PRNG key for the initial draws (unused when ``samples`` is given).
          samples: optional initial content whose leaves have leading axis
            ``capacity``.

        Returns:
          A :class:`ReplayBufferState` with ``cursor = 0``.
        """
        if samples is None:
            samples = self.init_fn(key, self.capacity)
        for leaf in jax.tree_util.tree_leaves(samples):
            if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != self.capacity:
                raise ValueError(
                    f"buffer `samples` must have leading axis capacity={self.capacity}; got "
                    f"shape {jnp.shape(leaf)}. Check init_fn(key, n) returns n configurations."
                )
        return ReplayBufferState(samples=samples, cursor=jnp.zeros((), jnp.int32))

    def sample(
        self, key: jax.Array, state: ReplayBufferState, *, batch_size: int
    ) -> tuple[Any, jax.Array]:
        """Read a random batch, reinitialising each entry with probability ``reinit_prob``.

        Args:
          key: PRNG key.
          state: current buffer state.
          batch_size: keyword-only number of entries to read (static, ``>= 1``).

        Returns:
          ``(x, indices)``: the batch (leading axis ``batch_size``) and the
          int32 buffer indices it was read from, for :meth:`update`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        k_idx, k_mask, k_new = jax.random.split(key, 3)
        indices = jax.random.randint(k_idx, (batch_size,), 0, self.capacity, dtype=jnp.int32)
        stored = jax.tree_util.tree_map(lambda leaf: leaf[indices], state.samples)
        if self.reinit_prob == 0.0:
            return stored, indices
        fresh = self.init_fn(k_new, batch_size)
        reinit = jax.random.bernoulli(k_mask, self.reinit_prob, (batch_size,))

        def choose(old: jax.Array, new: jax.Array) -> jax.Array:
            mask = reinit.reshape((batch_size,) + (1,) * (old.ndim - 1))
            return jnp.where(mask, new.astype(old.dtype), old)

        return jax.tree_util.tree_map(choose, stored, fresh), indices

    def update(self, state: ReplayBufferState, indices: jax.Array, x: Any) -> ReplayBufferState:
        """Write ``x`` back at ``indices`` (the indices returned by :meth:`sample`).

        With repeated indices one of the writes wins (which one is
        unspecified, as for any scatter).
        """
        samples = jax.tree_util.tree_map(
            lambda leaf, new: leaf.at[indices].set(new.astype(leaf.dtype)), state.samples, x
        )
        return ReplayBufferState(samples=samples, cursor=state.cursor)

    def push(self, state: ReplayBufferState, x: Any) -> ReplayBufferState:
        """Append a batch ``x`` at the ring-buffer cursor, overwriting the oldest slots."""
        n = jnp.shape(jax.tree_util.tree_leaves(x)[0])[0]
        indices = (state.cursor + jnp.arange(n, dtype=jnp.int32)) % self.capacity
        samples = jax.tree_util.tree_map(
            lambda leaf, new: leaf.at[indices].set(new.astype(leaf.dtype)), state.samples, x
        )
        return ReplayBufferState(samples=samples, cursor=(state.cursor + n) % self.capacity)
