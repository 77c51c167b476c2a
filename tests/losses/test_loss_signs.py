"""Sign test: one gradient step of every loss moves a quadratic energy toward the data."""

import jax
import jax.numpy as jnp
import numpy as np

import umrf
from umrf import losses

MU = jnp.array([2.0, -1.0])


def quad(m, x):
    return 0.5 * jnp.sum((x - m) ** 2)


def nc_score(m, x, sigma):
    return -(x - m) / (1.0 + sigma**2)


def test_every_loss_moves_the_mean_toward_the_data():
    x = MU[None] + 0.5 * jax.random.normal(jax.random.key(0), (256, 2))
    m0 = jnp.zeros(2)
    x_model = m0[None] + jax.random.normal(jax.random.key(1), (256, 2))  # exact p_m0 samples
    key = jax.random.key(2)
    objectives = {
        "cd": lambda m: losses.contrastive_divergence(quad, m, x, x_model),
        "cd_reg": lambda m: losses.contrastive_divergence(quad, m, x, x_model, alpha=0.01),
        "sm": lambda m: losses.score_matching(quad, m, x),
        "ssm": lambda m: losses.sliced_score_matching(quad, key, m, x),
        "ssm_gauss": lambda m: losses.sliced_score_matching(
            quad, key, m, x, distribution="gaussian"
        ),
        "dsm": lambda m: losses.denoising_score_matching(umrf.score(quad), key, m, x, sigma=0.3),
        "mdsm": lambda m: losses.multiscale_denoising_score_matching(
            nc_score, key, m, x, sigmas=losses.geometric_sigmas(1.0, 0.1, 3)
        ),
    }
    for name, f in objectives.items():
        g = jax.jit(jax.grad(f))(m0)
        # descent direction -g must point from m0 toward the data mean
        cos = float(jnp.dot(-g, MU - m0) / (jnp.linalg.norm(g) * jnp.linalg.norm(MU - m0)))
        assert cos > 0.9, (name, g)
        m1 = m0 - 0.1 * g
        assert float(jnp.linalg.norm(m1 - MU)) < float(jnp.linalg.norm(m0 - MU)), name


def test_precision_moves_toward_data_spread():
    # Energy ½ exp(a) ‖x‖² with data variance 0.25 (optimal exp(a) = 4 for SM):
    # from a = 0 every score loss must increase a.
    x = 0.5 * jax.random.normal(jax.random.key(3), (512, 2))

    def e(a, x):
        return 0.5 * jnp.exp(a) * jnp.sum(x**2)

    key = jax.random.key(4)
    x_model = jax.random.normal(jax.random.key(5), (512, 2))  # exact samples at a = 0
    for name, f in {
        "cd": lambda a: losses.contrastive_divergence(e, a, x, x_model),
        "sm": lambda a: losses.score_matching(e, a, x),
        "ssm": lambda a: losses.sliced_score_matching(e, key, a, x, num_projections=2),
        "dsm": lambda a: losses.denoising_score_matching(umrf.score(e), key, a, x, sigma=0.1),
    }.items():
        assert float(jax.jit(jax.grad(f))(0.0)) < 0.0, name
    np.testing.assert_array_less(0.0, 1.0)
