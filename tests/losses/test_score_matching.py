"""Exact score matching: closed form, Hyvärinen's theorem, NaN reporting, jit, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import umrf
from umrf.losses import score_matching

D = 3


def gaussian_energy(params, x):
    """E = ½ (x - m)ᵀ P (x - m) with P = (A + Aᵀ)/2."""
    p = 0.5 * (params["A"] + params["A"].T)
    z = x - params["m"]
    return 0.5 * z @ p @ z


def data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    L = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.4, 0.5]])
    x = rng.normal(size=(n, D)) @ L.T + np.array([1.0, -2.0, 0.5])
    return jnp.asarray(x, jnp.float32)


def minimise(f, p0, iters=100):
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    @jax.jit
    def run(p):
        def body(carry, _):
            p, s = carry
            v, g = vg(p, state=s)
            u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), None, length=iters)
        return p

    return run(p0)


def test_matches_closed_form_for_gaussian():
    # J(m, P) = -tr P + ½ mean (x-m)ᵀ P² (x-m), exactly.
    x = data()
    rng = np.random.default_rng(1)
    for _ in range(3):
        A = jnp.asarray(rng.normal(size=(D, D)), jnp.float32)
        m = jnp.asarray(rng.normal(size=D), jnp.float32)
        p = 0.5 * (A + A.T)
        z = x - m[None]
        expected = -jnp.trace(p) + 0.5 * jnp.mean(jnp.sum((z @ p) ** 2, axis=1))
        got = jax.jit(score_matching, static_argnums=0)(gaussian_energy, {"A": A, "m": m}, x)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_hyvarinen_theorem_recovers_ml_estimate():
    # Hyvärinen (2005) §3: for a Gaussian model the SM estimate is the sample
    # mean and the (biased) sample covariance, i.e. the ML estimate.
    x = data()
    p0 = {"A": jnp.eye(D, dtype=jnp.float32), "m": jnp.zeros(D, jnp.float32)}
    p = minimise(lambda q: score_matching(gaussian_energy, q, x), p0)
    mean_ml = np.mean(np.asarray(x, np.float64), axis=0)
    cov_ml = np.cov(np.asarray(x, np.float64), rowvar=False, bias=True)
    cov_sm = np.linalg.inv(0.5 * (np.asarray(p["A"]) + np.asarray(p["A"]).T))
    np.testing.assert_allclose(p["m"], mean_ml, atol=2e-4)
    np.testing.assert_allclose(cov_sm, cov_ml, atol=2e-3, rtol=1e-3)
    # The gradient of the objective vanishes at the ML estimate.
    p_ml = {
        "A": jnp.asarray(np.linalg.inv(cov_ml), jnp.float32),
        "m": jnp.asarray(mean_ml, jnp.float32),
    }
    g = jax.grad(lambda q: score_matching(gaussian_energy, q, x))(p_ml)
    assert max(float(jnp.max(jnp.abs(v))) for v in jax.tree_util.tree_leaves(g)) < 1e-4


def test_pytree_and_image_shaped_examples():
    # Each example may be any array (flattened for the trace): E = ½ c ‖x‖² on (2, 2) images
    # gives J = -c·4 + ½ c² mean ‖x‖².
    x = jax.random.normal(jax.random.key(0), (6, 2, 2))
    c = 1.7
    got = score_matching(lambda c, x: 0.5 * c * jnp.sum(x**2), c, x)
    expected = -c * 4 + 0.5 * c**2 * jnp.mean(jnp.sum(x**2, axis=(1, 2)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    tree = {"a": x[:, 0], "b": x[:, 1]}
    got_tree = score_matching(
        lambda c, t: 0.5 * c * (jnp.sum(t["a"] ** 2) + jnp.sum(t["b"] ** 2)), c, tree
    )
    np.testing.assert_allclose(got_tree, expected, rtol=1e-5)


def test_nonfinite_loss_is_reported_not_replaced():
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5], [3.0, 1.0]])

    def energy(p, x):
        return p * jnp.sum(jnp.sqrt(x))  # NaN for x < 0

    loss, info = score_matching(energy, 1.0, x, return_info=True)
    assert np.isnan(float(loss))
    assert not bool(info.is_finite)
    assert int(info.num_nonfinite) == 1
    loss, info = score_matching(energy, 1.0, jnp.abs(x) + 0.1, return_info=True)
    assert bool(info.is_finite) and int(info.num_nonfinite) == 0
    # has_aux works for training loops
    (v, info), g = jax.value_and_grad(
        lambda p: score_matching(energy, p, jnp.abs(x) + 0.1, return_info=True), has_aux=True
    )(1.0)
    assert np.isfinite(float(g))


def test_jit_vmap_and_no_recompile():
    x = data(64)
    p0 = {"A": jnp.eye(D), "m": jnp.zeros(D)}

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(p):
        return score_matching(gaussian_energy, p, x)

    eager = score_matching(gaussian_energy, p0, x)
    np.testing.assert_allclose(loss(p0), eager, rtol=1e-6)
    p1 = jax.tree_util.tree_map(lambda a: a + 0.1, p0)
    loss(p1)  # new params: no retrace
    batch = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), p0, p1)
    vm = jax.vmap(lambda p: score_matching(gaussian_energy, p, x))(batch)
    np.testing.assert_allclose(vm, [eager, score_matching(gaussian_energy, p1, x)], rtol=1e-5)


def test_bad_inputs():
    def e(p, x):
        return jnp.sum(x**2)

    with pytest.raises(TypeError, match="floating"):
        score_matching(e, None, jnp.ones((3, 2), jnp.int32))
    with pytest.raises(ValueError, match="empty batch"):
        score_matching(e, None, jnp.ones((0, 2)))
    with pytest.raises(ValueError, match="leading batch axis"):
        score_matching(e, None, jnp.float32(1.0))
    with pytest.raises(ValueError, match="NaN"):
        score_matching(e, None, jnp.array([[1.0, jnp.nan]]))


def test_exported():
    assert umrf.losses.score_matching is score_matching
