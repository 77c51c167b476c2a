"""umrf.score / umrf.logdensity: the one energy convention (DESIGN.md §1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf


def test_logdensity_and_score_follow_the_convention():
    g = umrf.models.Gaussian(jnp.array([1.0, -1.0]), jnp.array([[2.0, 0.5], [0.5, 1.0]]))
    energy = lambda m, x: m.energy(x)  # noqa: E731
    x = jnp.array([0.3, 0.4])
    for t in (1.0, 2.5):
        lp = umrf.logdensity(energy, temperature=t)
        sc = umrf.score(energy, temperature=t)
        assert float(lp(g, x)) == pytest.approx(-float(g.energy(x)) / t, rel=1e-6)
        # score of N(μ, TΛ⁻¹) is -Λ(x - μ)/T
        np.testing.assert_allclose(sc(g, x), -(g.precision @ (x - g.mean)) / t, rtol=1e-5)
        # the score is the gradient of the normalised log-density too (Z drops out)
        np.testing.assert_allclose(
            sc(g, x), jax.grad(lambda y, t=t: g.log_prob(y, temperature=t))(x), rtol=1e-5, atol=1e-6
        )


def test_score_on_pytree_positions_and_under_jit_vmap():
    energy = lambda p, x: p * (jnp.sum(x["a"] ** 2) + jnp.sin(x["b"]))  # noqa: E731
    sc = jax.jit(jax.vmap(umrf.score(energy, temperature=2.0), in_axes=(None, 0)))
    xs = {"a": jnp.ones((4, 3)), "b": jnp.linspace(0, 1, 4)}
    out = sc(3.0, xs)
    np.testing.assert_allclose(out["a"], -3.0 * 2 * xs["a"] / 2.0, rtol=1e-6)
    np.testing.assert_allclose(out["b"], -3.0 * jnp.cos(xs["b"]) / 2.0, rtol=1e-6)


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        umrf.score(lambda p, x: x, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        umrf.logdensity(lambda p, x: x, temperature=-1.0)
