"""A DeepCNF-style sequence labeller: 1-D CNN emissions + linear-chain CRF (flax NNX).

Wang, Peng, Ma & Xu (2016) predict protein secondary structure with a deep
convolutional network whose per-residue outputs are the unary potentials of
a linear-chain CRF ("deep convolutional neural fields"). Here:

* :class:`ConvEmitter`: one-hot residues ``(B, L, 20)`` → ``num_layers`` SAME
  1-D convolutions with ReLU → a width-1 convolution giving emissions
  ``(B, L, K)``. Its receptive field is ``num_layers · (kernel_size - 1) + 1``
  residues.
* :class:`SequenceLabeller`: the emitter plus (``use_crf=True``) CRF
  transition, start and end scores. Trained by the CRF negative
  log-likelihood (:func:`umrf.losses.crf_negative_log_likelihood`) and
  decoded by Viterbi; with ``use_crf=False`` the same network is trained by
  per-residue softmax cross-entropy and decoded by argmax (the baseline
  "network alone").
* :func:`train_labeller`: ``optax`` Adam on the model's ``nnx.Param`` state
  in one jitted step function (parameters are traced arguments: no
  recompilation between steps).

References:
  S. Wang, J. Peng, J. Ma, J. Xu. Protein secondary structure prediction
  using deep convolutional neural fields. Scientific Reports 6, 18962 (2016).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from umrf._validation import check_positive, check_positive_int
from umrf.crf._chain import chain_marginals, viterbi
from umrf.crf._loss import crf_negative_log_likelihood
from umrf.crf._metrics import q3_accuracy, segment_overlap
from umrf.crf._protein_data import ProteinData


class ConvEmitter(nnx.Module):
    """1-D convolutional network mapping residue indices ``(B, L)`` to emissions ``(B, L, K)``."""

    def __init__(
        self,
        num_labels: int = 3,
        *,
        vocab_size: int = 20,
        hidden: int = 16,
        kernel_size: int = 3,
        num_layers: int = 2,
        rngs: nnx.Rngs,
    ):
        self.vocab_size = vocab_size
        widths = [vocab_size] + [hidden] * num_layers
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.convs = nnx.List([nnx.Conv(a, b, kernel_size, rngs=rngs) for a, b in pairs])
        self.out = nnx.Conv(widths[-1], num_labels, 1, rngs=rngs)

    def __call__(self, residues: jax.Array) -> jax.Array:
        """Emission scores ``(B, L, K)`` of integer residues ``(B, L)``."""
        h = jax.nn.one_hot(residues, self.vocab_size)
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        return self.out(h)


class SequenceLabeller(nnx.Module):
    """CNN emitter with an optional linear-chain CRF layer on top.

    Args:
      num_labels: number of labels ``K``.
      use_crf: add CRF transition/start/end scores (else: network alone).
      hidden: channels of the hidden convolutions.
      kernel_size: width of each convolution.
      num_layers: number of hidden convolutions.
      rngs: ``nnx.Rngs`` for the initialisation.
    """

    def __init__(
        self,
        num_labels: int = 3,
        *,
        use_crf: bool = True,
        hidden: int = 16,
        kernel_size: int = 3,
        num_layers: int = 2,
        rngs: nnx.Rngs,
    ):
        self.use_crf = use_crf
        self.net = ConvEmitter(
            num_labels, hidden=hidden, kernel_size=kernel_size, num_layers=num_layers, rngs=rngs
        )
        if use_crf:
            self.transitions = nnx.Param(jnp.zeros((num_labels, num_labels)))
            self.start = nnx.Param(jnp.zeros((num_labels,)))
            self.end = nnx.Param(jnp.zeros((num_labels,)))

    def emissions(self, residues: jax.Array) -> jax.Array:
        """Per-residue scores ``(B, L, K)``."""
        return self.net(residues)

    def loss(self, residues: jax.Array, states: jax.Array, mask: jax.Array) -> jax.Array:
        """CRF NLL per sequence (``use_crf``) or masked per-residue cross-entropy (baseline)."""
        e = self.emissions(residues)
        if self.use_crf:
            return crf_negative_log_likelihood(
                e, self.transitions[...], states, mask, start=self.start[...], end=self.end[...]
            )
        ce = optax.softmax_cross_entropy_with_integer_labels(e, states)
        return jnp.sum(jnp.where(mask, ce, 0.0)) / jnp.sum(mask)

    def predict(
        self, residues: jax.Array, mask: jax.Array, *, decode: str = "viterbi"
    ) -> jax.Array:
        """Predicted labels ``(B, L)``, ``-1`` at padding.

        Args:
          residues: ``(B, L)`` residue indices.
          mask: ``(B, L)`` prefix masks.
          decode: with a CRF, ``"viterbi"`` (the most probable label sequence)
            or ``"marginals"`` (per-residue argmax of the CRF posterior
            marginals, the Bayes decision for per-residue accuracy). Without a
            CRF both are the per-residue argmax of the emissions.
        """
        if decode not in ("viterbi", "marginals"):
            raise ValueError(f"`decode` must be 'viterbi' or 'marginals'; got {decode!r}.")
        e = self.emissions(residues)
        if not self.use_crf:
            return jnp.where(mask, jnp.argmax(e, -1), -1)
        A, s, f = self.transitions[...], self.start[...], self.end[...]
        if decode == "viterbi":
            path, _ = jax.vmap(lambda e_, m_: viterbi(e_, A, m_, start=s, end=f))(e, mask)
            return path
        nodes = jax.vmap(lambda e_, m_: chain_marginals(e_, A, m_, start=s, end=f).nodes)(e, mask)
        return jnp.where(mask, jnp.argmax(nodes, -1), -1)


class LabellerFit(NamedTuple):
    """Result of :func:`train_labeller`.

    Attributes:
      model: the trained model.
      losses: ``(steps,)`` training losses.
      diverged: True if any loss was NaN or infinite (training stops there).
    """

    model: SequenceLabeller
    losses: np.ndarray
    diverged: bool


def train_labeller(
    model: SequenceLabeller,
    data: ProteinData,
    *,
    steps: int = 300,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> LabellerFit:
    """Train a :class:`SequenceLabeller` with Adam on minibatches of ``data``.

    Args:
      model: the model to train (not modified; a trained copy is returned).
      data: training :class:`~umrf.crf.ProteinData`.
      steps: optimisation steps.
      batch_size: sequences per step (sampled without replacement per step).
      learning_rate: Adam step size.
      seed: numpy seed of the minibatch order.

    Returns:
      :class:`LabellerFit`.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive("learning_rate", learning_rate)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, residues, states, mask):
        def loss_fn(p):
            return nnx.merge(graphdef, p, rest).loss(residues, states, mask)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    n = data.residues.shape[0]
    losses = []
    diverged = False
    for _ in range(steps):
        idx = rng.choice(n, size=min(batch_size, n), replace=False)
        params, opt_state, loss = step(
            params, opt_state, data.residues[idx], data.states[idx], data.mask[idx]
        )
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            diverged = True
            break
    return LabellerFit(nnx.merge(graphdef, params, rest), np.asarray(losses), diverged)


def evaluate_labeller(
    model: SequenceLabeller, data: ProteinData, *, decode: str = "viterbi"
) -> dict[str, float]:
    """Q3 accuracy (%) and SOV'99 (%) of ``model`` on ``data`` (see :meth:`predict`)."""
    predict = nnx.jit(lambda m, r, k: m.predict(r, k, decode=decode))
    pred = np.asarray(predict(model, data.residues, data.mask))
    return {
        "q3": 100.0 * q3_accuracy(pred, data.states, data.mask),
        "sov": segment_overlap(pred, data.states, data.mask),
    }
