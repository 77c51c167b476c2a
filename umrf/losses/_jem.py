r"""JEM: a classifier read as an energy-based model (Grathwohl et al. 2020).

A classifier's logits ``f(x) ∈ R^K`` define, besides ``p(y | x) =
softmax(f(x))[y]``, the joint and marginal energy-based models

.. math::

   p(x, y) = \frac{\exp(f(x)[y])}{Z},\qquad
   E(x, y) = -f(x)[y],\qquad
   E(x) = -\log\sum_y \exp f(x)[y] = -\operatorname{logsumexp}_y\big(-E(x, y)\big),

and ``p(y | x) = p(x, y) / p(x)`` is exactly the softmax, so one network
classifies (``p(y|x)``), generates (Langevin on ``E(x)``, or on ``E(x|y) =
E(x, y)`` for a class) and fills in missing coordinates (Langevin on the
free coordinates of ``E(x)`` with the observed ones clamped, see
:class:`umrf.samplers.Clamped`). JEM trains ``log p(y|x) + log p(x)``:
cross-entropy plus contrastive divergence on ``E(x)`` (:func:`jem`).

**JEM's sampler in umrf's convention.** JEM's SGLD step is
``x' = x + α ∇ₓ f(x) + σ ε`` on ``f = -E`` with step ``α = 1`` and noise
``σ = 0.01``, two numbers that do not satisfy Langevin's ``σ² = 2α``.
umrf's ULA step ``x' = x - τ∇E(x)/T + sqrt(2τ) ε`` is the same update for

.. math::

   τ = σ²/2,\qquad T = τ/α = σ²/(2α),

so JEM samples ``exp(-E/T)`` with ``T = 5·10⁻⁵``: a very cold, nearly
deterministic chain, which is why short JEM chains act as a mode-seeking
optimiser. :func:`jem_sgld` builds exactly this ``umrf.samplers.ula``.

**Defaults of JEM's recipe** (``train_wrn_ebm.py``): a replay buffer of
:data:`JEM_BUFFER_CAPACITY` ``= 10 000`` samples with :data:`JEM_REINIT_PROB`
``= 0.05`` reinitialised from ``Uniform(-1, 1)`` (:func:`jem_replay_buffer`),
:data:`JEM_SGLD_STEPS` ``= 20`` SGLD steps per update, Adam with learning rate
1e-4 (warmed up over 1 000 steps) and Gaussian data noise ``σ = 0.03`` on
images scaled to ``[-1, 1]``.

References:
  Grathwohl, Wang, Jacobsen, Duvenaud, Norouzi & Swersky, *Your classifier
  is secretly an energy based model and you should treat it like one*,
  ICLR 2020.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from umrf._bind import bind
from umrf._loss_common import batch_size
from umrf._validation import check_callable, check_finite, check_positive, is_concrete
from umrf.samplers import Clamped, ReplayBuffer, SamplingAlgorithm, ula, uniform_init

__all__ = [
    "JEM_BUFFER_CAPACITY",
    "JEM_REINIT_PROB",
    "JEM_SGLD_NOISE",
    "JEM_SGLD_STEPS",
    "JEM_SGLD_STEP_SIZE",
    "JEMInfo",
    "jem",
    "jem_class_energy",
    "jem_class_position",
    "jem_energy",
    "jem_replay_buffer",
    "jem_sgld",
]

LogitsFn = Callable[[Any, Any], jax.Array]

#: JEM's SGLD gradient step ``α`` on ``f = -E``.
JEM_SGLD_STEP_SIZE = 1.0
#: JEM's SGLD noise standard deviation ``σ``.
JEM_SGLD_NOISE = 0.01
#: SGLD steps per training update in JEM.
JEM_SGLD_STEPS = 20
#: Replay-buffer size in JEM.
JEM_BUFFER_CAPACITY = 10_000
#: Probability that a buffer entry read for sampling is replaced by uniform noise.
JEM_REINIT_PROB = 0.05


# --------------------------------------------------------------------------- energies


def _jem_energy(params: Any, x: Any, *, logits_fn: LogitsFn) -> jax.Array:
    return -jax.nn.logsumexp(logits_fn(params, x))


def _jem_class_energy(params: Any, x_and_label: Any, *, logits_fn: LogitsFn) -> jax.Array:
    x, label = x_and_label
    logits = logits_fn(params, x)
    return -jnp.sum(logits * label.astype(logits.dtype))


def jem_energy(logits_fn: LogitsFn) -> Callable[[Any, Any], jax.Array]:
    r"""The marginal energy ``E(x) = -logsumexp_y f(x)[y]`` of a classifier.

    Args:
      logits_fn: ``logits_fn(params, x) -> (K,)`` logits of ONE example.

    Returns:
      ``energy_fn(params, x) -> scalar``; ``jem_energy(f) == jem_energy(f)``
      (value equality), so samplers rebuilt on it reuse compiled programs.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> energy = umrf.losses.jem_energy(lambda p, x: jnp.zeros(4))
      >>> round(float(energy(None, jnp.zeros(2))), 6)  # -log 4
      -1.386294
    """
    check_callable("logits_fn", logits_fn, "logits_fn(params, x) -> (num_classes,)")
    return bind(_jem_energy, logits_fn=logits_fn)


def jem_class_energy(logits_fn: LogitsFn) -> Callable[[Any, Any], jax.Array]:
    r"""The class-conditional energy ``E(x | y) = E(x, y) = -f(x)[y]``.

    The label travels with the configuration as a one-hot vector, so every
    chain of a batch may have its own class: the energy takes ``(x,
    one_hot)`` and returns ``-f(x) · one_hot``. Sample with a
    :class:`~umrf.samplers.Clamped` position that clamps the label (built by
    :func:`jem_class_position`); clamping pixels at the same time samples
    ``p(x_free | x_observed, y)``.

    Args:
      logits_fn: ``logits_fn(params, x) -> (K,)`` logits of ONE example.

    Returns:
      ``energy_fn(params, (x, one_hot)) -> scalar`` (value-equal for the same ``logits_fn``).

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> energy = umrf.losses.jem_class_energy(lambda p, x: jnp.array([1.0, 2.0, 3.0]))
      >>> float(energy(None, (jnp.zeros(2), jnp.array([0.0, 1.0, 0.0]))))
      -2.0
    """
    check_callable("logits_fn", logits_fn, "logits_fn(params, x) -> (num_classes,)")
    return bind(_jem_class_energy, logits_fn=logits_fn)


def jem_class_position(x: Any, y: Any, *, num_classes: int, observed: Any = None) -> Clamped:
    """A position for :func:`jem_class_energy`: ``x`` free (or partly observed), label clamped.

    Args:
      x: configurations, e.g. ``(n, 8, 8)`` start images (any leading axes).
      y: integer labels with the leading axes of ``x`` (``(n,)``).
      num_classes: keyword-only ``K``.
      observed: keyword-only boolean mask shaped like ``x`` (True = clamped
        coordinate); default: nothing observed.

    Returns:
      ``Clamped(value=(x, one_hot(y)), observed=(observed, all True))``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> pos = umrf.losses.jem_class_position(jnp.zeros((2, 3)), jnp.array([0, 2]), num_classes=3)
      >>> pos.value[1].tolist(), bool(pos.observed[1].all()), bool(pos.observed[0].any())
      ([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], True, False)
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2; got {num_classes!r}.")
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"`y` must hold integer class labels; got dtype {y.dtype}.")
    if y.shape != x.shape[: y.ndim]:
        raise ValueError(
            f"`y` must have the leading axes of `x` (one label per configuration); got "
            f"{y.shape} for x of shape {x.shape}."
        )
    if is_concrete(y) and (np.any(np.asarray(y) < 0) or np.any(np.asarray(y) >= num_classes)):
        raise ValueError(f"`y` must lie in 0..{num_classes - 1}.")
    if observed is None:
        observed = jnp.zeros(x.shape, bool)
    observed = jnp.asarray(observed)
    if observed.shape != x.shape or observed.dtype != jnp.bool_:
        raise ValueError(
            f"`observed` must be a boolean mask shaped like `x` {x.shape}; got "
            f"{observed.dtype} {observed.shape}."
        )
    one_hot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
    return Clamped((x, one_hot), (observed, jnp.ones(one_hot.shape, bool)))


# --------------------------------------------------------------------------- sampler, buffer


def jem_sgld(
    energy_fn: Callable[[Any, Any], jax.Array],
    *,
    step_size: float = JEM_SGLD_STEP_SIZE,
    noise_scale: float = JEM_SGLD_NOISE,
) -> SamplingAlgorithm:
    r"""JEM's SGLD ``x' = x - α ∇E(x) + σ ε`` as umrf's ULA (module docstring).

    Returns ``umrf.samplers.ula(energy_fn, step_size=σ²/2, temperature=σ²/(2α))``,
    whose update ``x - (τ/T)∇E + sqrt(2τ) ε`` is ``x - α∇E + σε`` exactly. It
    has ULA's Info (a ``diverged`` flag) and value equality.

    Args:
      energy_fn: ``energy_fn(params, x) -> scalar`` (e.g. :func:`jem_energy`).
      step_size: keyword-only gradient step ``α > 0`` on ``f = -E`` (JEM: 1).
      noise_scale: keyword-only noise standard deviation ``σ > 0`` (JEM: 0.01).

    Returns:
      A ``SamplingAlgorithm``.

    Examples:
      >>> import jax.numpy as jnp, umrf
      >>> alg = umrf.losses.jem_sgld(lambda p, x: jnp.sum(x))   # α = 1, σ = 0.01
      >>> alg.step.kwargs["step_size"], alg.step.kwargs["temperature"]  # τ = σ²/2, T = τ/α
      (5e-05, 5e-05)
    """
    check_positive("step_size", step_size)
    check_positive("noise_scale", noise_scale)
    tau = float(noise_scale) ** 2 / 2.0
    return ula(energy_fn, step_size=tau, temperature=tau / float(step_size))


def jem_replay_buffer(
    shape: Sequence[int],
    *,
    capacity: int = JEM_BUFFER_CAPACITY,
    reinit_prob: float = JEM_REINIT_PROB,
    low: float = -1.0,
    high: float = 1.0,
    dtype: Any = jnp.float32,
) -> ReplayBuffer:
    """A :class:`~umrf.samplers.ReplayBuffer` with JEM's defaults.

    10 000 samples, 5 % of each read batch reinitialised from
    ``Uniform(low, high)`` (JEM: ``[-1, 1]``, its pixel range).

    Args:
      shape: shape of ONE configuration (e.g. ``(8, 8)``).
      capacity: keyword-only number of stored samples.
      reinit_prob: keyword-only reinitialisation probability.
      low: keyword-only lower end of the reinitialisation noise.
      high: keyword-only upper end.
      dtype: keyword-only floating dtype.

    Returns:
      A ``ReplayBuffer``; ``buffer.init(key)`` fills it with noise.

    Examples:
      >>> import umrf
      >>> umrf.losses.jem_replay_buffer((8, 8))
      ReplayBuffer(capacity=10000, reinit_prob=0.05)
    """
    return ReplayBuffer(
        capacity, uniform_init(shape, low=low, high=high, dtype=dtype), reinit_prob=reinit_prob
    )


# --------------------------------------------------------------------------- the loss


class JEMInfo(NamedTuple):
    """Diagnostics of :func:`jem` (``return_info=True``).

    Attributes:
      is_finite: scalar bool, True iff the loss is finite.
      num_nonfinite: number of non-finite logits among data and negatives.
      classifier_loss: mean cross-entropy ``-log p(y|x)`` of the batch.
      accuracy: fraction of the batch whose largest logit is its label.
      energy_data: mean ``E(x)`` of the data (positive energy).
      energy_model: mean ``E(x̃)`` of the negatives. ``energy_model -
        energy_data`` far above zero and growing is the usual sign of a
        sampler that no longer keeps up (JEM's instability).
      energy_data_conditional: mean ``E(x, y)`` of the data, or None
        without the ``p(x|y)`` term.
      energy_model_conditional: mean ``E(x̃, ỹ)`` of the conditional
        negatives, or None.
    """

    is_finite: jax.Array
    num_nonfinite: jax.Array
    classifier_loss: jax.Array
    accuracy: jax.Array
    energy_data: jax.Array
    energy_model: jax.Array
    energy_data_conditional: Any = None
    energy_model_conditional: Any = None


def _check_labels(name: str, y: Any, n: int) -> jax.Array:
    y = y if isinstance(y, jax.Array) else jnp.asarray(y)
    if y.shape != (n,) or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`{name}` must be ({n},) integer class labels; got {y.dtype} {y.shape}.")
    return y


def _same_event_shape(name: str, a: Any, ref: Any) -> None:
    if jnp.shape(a)[1:] != jnp.shape(ref)[1:]:
        raise ValueError(
            f"`{name}` must hold configurations shaped like those of `x` "
            f"{jnp.shape(ref)[1:]}; got {jnp.shape(a)[1:]}."
        )


def jem(
    logits_fn: LogitsFn,
    params: Any,
    x: Any,
    y: Any,
    x_model: Any,
    *,
    x_model_conditional: Any = None,
    y_model: Any = None,
    classifier_weight: float = 1.0,
    generative_weight: float = 1.0,
    conditional_weight: float = 1.0,
    alpha: float = 0.0,
    return_info: bool = False,
) -> Any:
    r"""The JEM objective: cross-entropy for ``p(y|x)`` plus contrastive divergence on ``E(x)``.

    .. math::

       L(θ) = w_c \frac1n\sum_i -\log p_θ(y_i | x_i)
            + w_g \Big(\frac1n\sum_i E_θ(x_i) - \frac1m\sum_j E_θ(\mathrm{sg}\,\tilde x_j)\Big)
            + w_{xy} \Big(\frac1n\sum_i E_θ(x_i, y_i)
                          - \frac1{m'}\sum_j E_θ(\mathrm{sg}\,\tilde x'_j, \tilde y_j)\Big)
            + α \Big(\frac1n\sum_i E_θ(x_i)^2 + \frac1m\sum_j E_θ(\tilde x_j)^2\Big)

    with ``E(x) = -logsumexp f(x)``, ``E(x, y) = -f(x)[y]`` and ``sg`` the
    stop-gradient. The first term is ``optax.softmax_cross_entropy_with_integer_labels``;
    the second has the gradient of ``-mean log p(x)`` when ``x̃ ∼ p_θ(x)``
    (contrastive divergence: ``∇ log Z = -E_p[∇E]``), the third that of
    ``-mean log p(x | y)`` when ``x̃'_j ∼ p_θ(x | ỹ_j)`` and the ``ỹ`` are
    distributed like the data labels (JEM's optional ``p(x, y)`` term; it is
    included only when ``x_model_conditional`` is given). Draw ``x̃`` with
    :func:`jem_sgld` on :func:`jem_energy` from a :func:`jem_replay_buffer`
    (``umrf.samplers.replay_negatives``) and ``x̃'`` on
    :func:`jem_class_energy`. ``α`` is the energy-magnitude regulariser of
    Du & Mordatch (2019), one of the remedies against JEM's divergence. Only
    the gradient of the CD terms is meaningful, not their value.

    Args:
      logits_fn: ``logits_fn(params, x) -> (K,)`` on one example.
      params: pytree of parameters (differentiated).
      x: data batch ``(n, ...)`` (floating, finite).
      y: ``(n,)`` integer labels of ``x``.
      x_model: negatives ``(m, ...)`` for ``p(x)``; stop-gradient is applied.
      x_model_conditional: keyword-only class-conditional negatives
        ``(m', ...)``, or None (no ``p(x|y)`` term).
      y_model: keyword-only ``(m',)`` labels the conditional negatives were drawn for.
      classifier_weight: keyword-only ``w_c >= 0``.
      generative_weight: keyword-only ``w_g >= 0``.
      conditional_weight: keyword-only ``w_xy >= 0``.
      alpha: keyword-only ``α >= 0``.
      return_info: keyword-only; also return a :class:`JEMInfo`.

    Returns:
      The scalar loss, or ``(loss, JEMInfo)``. Non-finite logits make the
      loss non-finite; it is returned as is and flagged, never replaced.

    Raises:
      ValueError: mismatched batches or shapes, labels out of range,
        non-finite data, negative weights, a conditional term without labels.

    Examples:
      >>> import jax, jax.numpy as jnp, umrf
      >>> logits_fn = lambda w, x: w @ x                      # a linear classifier
      >>> w, x, y = jnp.zeros((3, 2)), jnp.ones((4, 2)), jnp.array([0, 1, 2, 0])
      >>> loss, info = umrf.losses.jem(logits_fn, w, x, y, -x, return_info=True)
      >>> round(float(info.classifier_loss), 6), bool(info.is_finite)  # log 3 at w = 0
      (1.098612, True)
      >>> jax.grad(umrf.losses.jem, argnums=1)(logits_fn, w, x, y, -x).shape
      (3, 2)

    References:
      Grathwohl et al., ICLR 2020. Du & Mordatch, *Implicit generation and
      modeling with energy-based models*, NeurIPS 2019.
    """
    check_callable("logits_fn", logits_fn, "logits_fn(params, x) -> (num_classes,)")
    n = batch_size("x", x)
    batch_size("x_model", x_model)
    _same_event_shape("x_model", x_model, x)
    check_finite("x", x)
    y = _check_labels("y", y, n)
    for name, w in (
        ("classifier_weight", classifier_weight),
        ("generative_weight", generative_weight),
        ("conditional_weight", conditional_weight),
        ("alpha", alpha),
    ):
        check_positive(name, w, allow_zero=True)
    conditional = x_model_conditional is not None
    if conditional:
        if y_model is None:
            raise ValueError(
                "`y_model` (the labels the conditional negatives were sampled for) is required "
                "with `x_model_conditional`."
            )
        m_cond = batch_size("x_model_conditional", x_model_conditional)
        _same_event_shape("x_model_conditional", x_model_conditional, x)
        y_model = _check_labels("y_model", y_model, m_cond)
    elif y_model is not None:
        raise ValueError("`y_model` was given without `x_model_conditional`; pass both or neither.")

    one = jax.tree_util.tree_map(lambda leaf: leaf[0], x)
    out = jax.eval_shape(logits_fn, params, one)
    if len(out.shape) != 1 or out.shape[0] < 2:
        raise ValueError(
            "`logits_fn(params, x)` must return a vector of num_classes >= 2 logits for ONE "
            f"example; got shape {out.shape}."
        )
    num_classes = out.shape[0]
    if is_concrete(y):
        labels = np.asarray(y) if not conditional else np.concatenate([y, y_model])
        if np.any(labels < 0) or np.any(labels >= num_classes):
            raise ValueError(f"labels `y`/`y_model` must lie in 0..{num_classes - 1}.")

    batched = jax.vmap(logits_fn, in_axes=(None, 0))
    logits = batched(params, x)
    logits_model = batched(params, jax.lax.stop_gradient(x_model))
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    e_data = -jax.nn.logsumexp(logits, axis=-1)
    e_model = -jax.nn.logsumexp(logits_model, axis=-1)
    loss = classifier_weight * ce + generative_weight * (jnp.mean(e_data) - jnp.mean(e_model))
    if not is_concrete(alpha) or alpha != 0.0:
        loss = loss + alpha * (jnp.mean(e_data**2) + jnp.mean(e_model**2))
    nonfinite = jnp.sum(~jnp.isfinite(logits)) + jnp.sum(~jnp.isfinite(logits_model))
    e_data_c = e_model_c = None
    if conditional:
        logits_cond = batched(params, jax.lax.stop_gradient(x_model_conditional))
        e_data_c = -jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
        e_model_c = -jnp.take_along_axis(logits_cond, y_model[:, None], axis=1)[:, 0]
        loss = loss + conditional_weight * (jnp.mean(e_data_c) - jnp.mean(e_model_c))
        nonfinite = nonfinite + jnp.sum(~jnp.isfinite(logits_cond))
    if not return_info:
        return loss
    sg = jax.lax.stop_gradient
    info = JEMInfo(
        is_finite=jnp.isfinite(loss),
        num_nonfinite=nonfinite.astype(jnp.int32),
        classifier_loss=sg(ce),
        accuracy=jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32)),
        energy_data=sg(jnp.mean(e_data)),
        energy_model=sg(jnp.mean(e_model)),
        energy_data_conditional=None if e_data_c is None else sg(jnp.mean(e_data_c)),
        energy_model_conditional=None if e_model_c is None else sg(jnp.mean(e_model_c)),
    )
    return loss, info
