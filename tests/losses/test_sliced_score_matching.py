"""Sliced score matching: unbiasedness, agreement with exact SM, optimum, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from umrf.losses import score_matching, sliced_score_matching

D = 3


def gaussian_energy(params, x):
    p = 0.5 * (params["A"] + params["A"].T)
    z = x - params["m"]
    return 0.5 * z @ p @ z


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    L = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.4, 0.5]])
    return jnp.asarray(rng.normal(size=(n, D)) @ L.T + np.array([1.0, -2.0, 0.5]), jnp.float32)


def random_params(seed):
    rng = np.random.default_rng(seed)
    return {
        "A": jnp.asarray(rng.normal(size=(D, D)), jnp.float32),
        "m": jnp.asarray(rng.normal(size=D), jnp.float32),
    }


ssm = jax.jit(
    sliced_score_matching, static_argnums=0, static_argnames=("num_projections", "distribution")
)
sm = jax.jit(score_matching, static_argnums=0)


def test_rademacher_is_exact_for_diagonal_hessian():
    # v_i² = 1, so vᵀ H v = tr H when H is diagonal: SSM equals SM exactly.
    x = data(50)
    params = {"A": jnp.diag(jnp.array([0.5, 2.0, 1.5])), "m": jnp.array([0.1, 0.2, 0.3])}
    got = ssm(gaussian_energy, jax.random.key(0), params, x, num_projections=2)
    np.testing.assert_allclose(got, sm(gaussian_energy, params, x), rtol=1e-5)


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_unbiased_estimate_of_exact_score_matching(distribution):
    # Average over independent projection keys converges to the exact objective.
    x = data(200)
    params = random_params(3)
    exact = float(sm(gaussian_energy, params, x))
    keys = jax.random.split(jax.random.key(1), 256)
    vals = np.asarray(
        jax.jit(
            jax.vmap(
                lambda k: sliced_score_matching(
                    gaussian_energy, k, params, x, distribution=distribution
                )
            )
        )(keys)
    )
    se = vals.std(ddof=1) / np.sqrt(len(vals))
    assert se > 0
    assert abs(vals.mean() - exact) < 4 * se, (vals.mean(), exact, se)


def test_optimum_agrees_with_ml_within_sampling_error():
    x = data(2000)
    key = jax.random.key(7)

    def f(q):
        return sliced_score_matching(gaussian_energy, key, q, x, num_projections=4)

    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    @jax.jit
    def run(p):
        def body(carry, _):
            p, s = carry
            v, g = vg(p, state=s)
            u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), None, length=100)
        return p

    p = run({"A": jnp.eye(D), "m": jnp.zeros(D)})
    x64 = np.asarray(x, np.float64)
    cov_ml = np.cov(x64, rowvar=False, bias=True)
    cov = np.linalg.inv(0.5 * (np.asarray(p["A"]) + np.asarray(p["A"]).T))
    np.testing.assert_allclose(p["m"], x64.mean(0), atol=2e-3)
    # Sampling error of the projections (n·M = 8000 draws): a few percent.
    np.testing.assert_allclose(cov, cov_ml, atol=0.05)


def test_nan_flagged_jit_and_no_recompile():
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])

    def energy(p, x):
        return p * jnp.sum(jnp.sqrt(x))

    loss, info = jax.jit(
        lambda p: sliced_score_matching(energy, jax.random.key(0), p, x, return_info=True)
    )(1.0)
    assert np.isnan(float(loss)) and not bool(info.is_finite) and int(info.num_nonfinite) == 1

    xs = data(32)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss_fn(p, key):
        return sliced_score_matching(gaussian_energy, key, p, xs, num_projections=3)

    p0, p1 = random_params(0), random_params(1)
    a = loss_fn(p0, jax.random.key(0))
    loss_fn(p1, jax.random.key(1))
    np.testing.assert_allclose(
        a,
        ssm(gaussian_energy, jax.random.key(0), p0, xs, num_projections=3),
        rtol=1e-5,
    )


def test_bad_inputs():
    def e(p, x):
        return jnp.sum(x**2)

    x = jnp.ones((4, 2))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="num_projections"):
        sliced_score_matching(e, key, None, x, num_projections=0)
    with pytest.raises(TypeError, match="num_projections"):
        sliced_score_matching(e, key, None, x, num_projections=2.0)
    with pytest.raises(ValueError, match="distribution"):
        sliced_score_matching(e, key, None, x, distribution="uniform")
    with pytest.raises(TypeError, match="key"):
        sliced_score_matching(e, 0, None, x)
    with pytest.raises(TypeError, match="floating"):
        sliced_score_matching(e, key, None, x.astype(jnp.int32))
