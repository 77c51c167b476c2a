"""Brute-force reference for the linear-chain CRF tests (enumerates all K**n sequences)."""

import itertools

import numpy as np
import pytest


def brute_force(e, A, mask=None, start=None, end=None):
    """Return ``(sequences, scores, log_z)`` of every label sequence of the valid prefix."""
    e, A = np.asarray(e, np.float64), np.asarray(A, np.float64)
    L, K = e.shape
    n = L if mask is None else int(np.sum(mask))
    s = np.zeros(K) if start is None else np.asarray(start, np.float64)
    f = np.zeros(K) if end is None else np.asarray(end, np.float64)
    seqs = list(itertools.product(range(K), repeat=n))
    scores = []
    for y in seqs:
        sc = s[y[0]] + sum(e[t, y[t]] for t in range(n)) + f[y[-1]]
        sc += sum(A[y[t - 1], y[t]] for t in range(1, n))
        scores.append(sc)
    scores = np.array(scores)
    finite = scores[np.isfinite(scores)]
    log_z = -np.inf if finite.size == 0 else np.logaddexp.reduce(finite)
    return seqs, scores, log_z


def brute_marginals(e, A, mask=None, start=None, end=None):
    e = np.asarray(e)
    L, K = e.shape
    seqs, scores, log_z = brute_force(e, A, mask, start, end)
    p = np.exp(scores - log_z)
    nodes, pairs = np.zeros((L, K)), np.zeros((max(L - 1, 0), K, K))
    for y, w in zip(seqs, p, strict=True):
        for t, k in enumerate(y):
            nodes[t, k] += w
        for t in range(len(y) - 1):
            pairs[t, y[t], y[t + 1]] += w
    return nodes, pairs


@pytest.fixture
def brute():
    return brute_force


@pytest.fixture
def brute_marg():
    return brute_marginals


def random_problem(seed, L, K, *, forbid=0, with_ends=True):
    """Random scores; ``forbid`` transitions set to -inf (never a whole row/column)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(L, K)).astype(np.float32)
    A = rng.normal(size=(K, K)).astype(np.float32)
    idx = rng.permutation(K * K)
    count = 0
    for flat in idx:
        if count >= forbid:
            break
        i, j = divmod(int(flat), K)
        if i == j:
            continue
        A[i, j] = -np.inf
        count += 1
    s = rng.normal(size=K).astype(np.float32) if with_ends else None
    f = rng.normal(size=K).astype(np.float32) if with_ends else None
    return e, A, s, f


@pytest.fixture
def problem():
    return random_problem
