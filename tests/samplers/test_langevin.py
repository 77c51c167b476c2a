"""The shared Langevin proposal pieces: noise laws, clamped moves, finiteness checks."""

import jax
import jax.numpy as jnp
import numpy as np

from umrf.samplers._langevin import normal_like_and_uniform


def test_noise_and_acceptance_uniform_from_one_draw_have_the_right_laws():
    """N(0, 1) noise (any pytree) and an independent U(0, 1), over many keys."""
    keys = jax.random.split(jax.random.key(11), 20000)
    tree = {"a": jnp.zeros((2, 2)), "b": jnp.zeros(3)}
    noise, u = jax.vmap(lambda k: normal_like_and_uniform(k, tree))(keys)
    z = np.concatenate([np.asarray(noise["a"]).reshape(-1, 4), np.asarray(noise["b"])], axis=1)
    assert noise["a"].shape == (20000, 2, 2) and noise["b"].shape == (20000, 3)
    # Standard errors with n = 20000: mean 0.007, variance 0.01, 4th moment 0.05.
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(z.var(0), 1.0, atol=0.04)
    np.testing.assert_allclose((z**4).mean(0), 3.0, atol=0.25)
    u = np.asarray(u)
    assert 0.0 < u.min() and u.max() < 1.0
    np.testing.assert_allclose([u.mean(), u.var()], [0.5, 1 / 12], atol=0.01)
    corr = np.corrcoef(np.concatenate([z, u[:, None]], axis=1), rowvar=False)
    np.testing.assert_allclose(corr - np.eye(8), 0.0, atol=0.04)
