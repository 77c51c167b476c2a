"""Bad input to the losses: a clear error naming the argument, or a flagged non-finite loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from umrf import losses


def quad(p, x):
    return 0.5 * p * jnp.sum(x**2)


def vector_energy(p, x):
    return p * x**2


def score(p, x):
    return -p * x


def scalar_score(p, x):
    return -p * jnp.sum(x)


def nc_score(p, x, s):
    return -p * x / (1.0 + s**2)


X = jnp.ones((8, 2))
KEY = jax.random.key(0)

CASES = {
    # contrastive divergence
    "negatives of another dimension": (
        lambda: losses.contrastive_divergence(quad, 1.0, X, jnp.ones((8, 3))),
        ValueError,
        "x_model",
    ),
    "empty data batch": (
        lambda: losses.contrastive_divergence(quad, 1.0, jnp.ones((0, 2)), X),
        ValueError,
        "x_data",
    ),
    "data with NaN": (
        lambda: losses.contrastive_divergence(quad, 1.0, X.at[0, 0].set(jnp.nan), X),
        ValueError,
        "x_data",
    ),
    "negative alpha": (
        lambda: losses.contrastive_divergence(quad, 1.0, X, X, alpha=-1.0),
        ValueError,
        "alpha",
    ),
    "model weights of the wrong length": (
        lambda: losses.contrastive_divergence(quad, 1.0, X, X, model_weights=jnp.ones(3) / 3),
        ValueError,
        "model_weights",
    ),
    "model weights that do not sum to one": (
        lambda: losses.contrastive_divergence(quad, 1.0, X, X, model_weights=jnp.ones(8)),
        ValueError,
        "model_weights",
    ),
    "CD energy that is not a scalar": (
        lambda: losses.contrastive_divergence(vector_energy, 1.0, X, X),
        ValueError,
        "energy_fn",
    ),
    # score matching
    "SM energy that is not a scalar": (
        lambda: losses.score_matching(vector_energy, 1.0, X),
        ValueError,
        "energy_fn",
    ),
    "SM on integer data": (
        lambda: losses.score_matching(quad, 1.0, X.astype(jnp.int32)),
        TypeError,
        "floating",
    ),
    "SSM energy that is not a scalar": (
        lambda: losses.sliced_score_matching(vector_energy, KEY, 1.0, X),
        ValueError,
        "energy_fn",
    ),
    "SSM zero projections": (
        lambda: losses.sliced_score_matching(quad, KEY, 1.0, X, num_projections=0),
        ValueError,
        "num_projections",
    ),
    "SSM unknown distribution": (
        lambda: losses.sliced_score_matching(quad, KEY, 1.0, X, distribution="laplace"),
        ValueError,
        "distribution",
    ),
    "SSM key is an int": (
        lambda: losses.sliced_score_matching(quad, 0, 1.0, X),
        TypeError,
        "key",
    ),
    # denoising score matching
    "DSM score that is a scalar": (
        lambda: losses.denoising_score_matching(scalar_score, KEY, 1.0, X, sigma=0.1),
        ValueError,
        "score_fn",
    ),
    "DSM sigma zero": (
        lambda: losses.denoising_score_matching(score, KEY, 1.0, X, sigma=0.0),
        ValueError,
        "sigma",
    ),
    "DSM data without a batch axis": (
        lambda: losses.denoising_score_matching(score, KEY, 1.0, jnp.float32(1.0), sigma=0.1),
        ValueError,
        "`x`",
    ),
    "DSM key is None": (
        lambda: losses.denoising_score_matching(score, None, 1.0, X, sigma=0.1),
        TypeError,
        "key",
    ),
    "multi-noise sigmas not 1-D": (
        lambda: losses.multiscale_denoising_score_matching(
            nc_score, KEY, 1.0, X, sigmas=jnp.ones((2, 2))
        ),
        ValueError,
        "sigmas",
    ),
    "multi-noise negative sigma": (
        lambda: losses.multiscale_denoising_score_matching(
            nc_score, KEY, 1.0, X, sigmas=jnp.array([1.0, -0.1])
        ),
        ValueError,
        "sigmas",
    ),
    "multi-noise score of the wrong shape": (
        lambda: losses.multiscale_denoising_score_matching(
            lambda p, x, s: jnp.sum(x), KEY, 1.0, X, sigmas=jnp.array([1.0])
        ),
        ValueError,
        "score_fn",
    ),
    "sigma ladder upside down": (
        lambda: losses.geometric_sigmas(0.1, 1.0, 5),
        ValueError,
        "sigma_min",
    ),
    "sigma ladder of zero levels": (
        lambda: losses.geometric_sigmas(1.0, 0.1, 0),
        ValueError,
        "num",
    ),
    # CRF loss
    "CRF tags out of range": (
        lambda: losses.crf_negative_log_likelihood(
            jnp.zeros((2, 3, 2)), jnp.zeros((2, 2)), jnp.full((2, 3), 2, jnp.int32)
        ),
        ValueError,
        "tags",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_raises_a_clear_error(case):
    fn, err, match = CASES[case]
    with pytest.raises(err, match=match):
        fn()


def test_non_finite_negatives_give_a_flagged_loss_not_a_number():
    """A diverged sampler's NaN negatives are reported, the same eagerly and under jit."""
    bad = X.at[0].set(jnp.nan)
    def cd(p, data, negatives):
        return losses.contrastive_divergence(quad, p, data, negatives, return_info=True)

    for f in (cd, jax.jit(cd)):
        loss, info = f(1.0, X, bad)
        assert np.isnan(float(loss)) and not bool(info.is_finite) and int(info.num_nonfinite) == 1


def test_traced_crf_tags_out_of_range_give_nan():
    e, A = jnp.zeros((2, 3, 2)), jnp.zeros((2, 2))
    tags = jnp.array([[0, 1, 1], [0, 7, 1]])
    nll = jax.jit(lambda t: losses.crf_negative_log_likelihood(e, A, t, return_info=True))
    loss, info = nll(tags)
    assert np.isnan(float(loss)) and not bool(info.is_finite) and int(info.num_nonfinite) == 1
    assert np.isfinite(float(nll(jnp.zeros((2, 3), jnp.int32))[0]))
