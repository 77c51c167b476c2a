"""Convolutional classifier/energy and score U-Net: exact layer maps, shapes, training, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import umrf
from umrf.models import Conv3x3, ConvClassifier, NoiseConditionalConvScore, nnx_logits

IMAGES = jax.random.uniform(jax.random.key(0), (5, 8, 8))


@pytest.mark.parametrize("stride", [1, 2])
def test_patch_convolution_is_the_lax_convolution(stride):
    conv = Conv3x3(3, 7, stride=stride, rngs=nnx.Rngs(1))
    conv.bias[...] = jax.random.normal(jax.random.key(2), (7,))
    x = jax.random.normal(jax.random.key(3), (2, 8, 6, 3))
    expected = (
        jax.lax.conv_general_dilated(
            x,
            conv.kernel[...],
            (stride, stride),
            ((1, 1), (1, 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
        + conv.bias[...][None, None, None, :]
    )
    out = conv(x)
    assert out.shape == expected.shape == (2, 8 // stride, 6 // stride, 7)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_classifier_shapes_adapter_and_training():
    net = ConvClassifier(10, channels=(4, 8), hidden_features=16, rngs=nnx.Rngs(0))
    logits_fn, params = nnx_logits(net)
    batched = jax.vmap(logits_fn, in_axes=(None, 0))(params, IMAGES)
    assert batched.shape == (5, 10)
    np.testing.assert_allclose(batched, net(IMAGES), rtol=1e-5, atol=1e-6)
    labels = jnp.arange(5)
    opt = optax.adam(1e-2)

    def loss(p):
        lg = jax.vmap(logits_fn, in_axes=(None, 0))(p, IMAGES)
        return optax.softmax_cross_entropy_with_integer_labels(lg, labels).mean()

    @jax.jit
    def step(p, s):
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = opt.init(params)
    l0 = float(loss(params))
    for _ in range(30):
        params, state = step(params, state)
    assert float(loss(params)) < 0.1 * l0  # memorises five images


def test_three_stage_classifier_and_energy_gradient():
    net = ConvClassifier(
        3, image_shape=(8, 4), channels=(4, 8, 8), hidden_features=8, rngs=nnx.Rngs(0)
    )
    logits_fn, params = nnx_logits(net)
    energy = umrf.losses.jem_energy(logits_fn)
    x = jnp.ones((8, 4))
    g = jax.jit(jax.grad(energy, argnums=1))(params, x)
    assert g.shape == (8, 4) and bool(jnp.all(jnp.isfinite(g)))


def test_new_parameters_do_not_retrace():
    logits_fn, params = nnx_logits(ConvClassifier(10, channels=(4, 8), rngs=nnx.Rngs(0)))
    traces = []

    @jax.jit
    def f(p, x):
        traces.append(1)
        return jax.vmap(logits_fn, in_axes=(None, 0))(p, x)

    f(params, IMAGES)
    f(jax.tree_util.tree_map(lambda a: a + 1.0, params), IMAGES + 0.5)
    assert len(traces) == 1


def test_score_network_starts_at_the_gaussian_score():
    """F is zero at initialisation, so s(x, σ) = -x / (σ² + σ_d²): the exact score of
    N(0, σ_d² I) data blurred by σ (the preconditioning's prior)."""
    net = NoiseConditionalConvScore(channels=(8, 16), sigma_data=0.4, rngs=nnx.Rngs(0))
    sigma = jnp.array([0.01, 0.1, 0.5, 1.0, 5.0])
    s = net(IMAGES, sigma)
    expected = -IMAGES / (sigma**2 + 0.16)[:, None, None]
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-6)
    # Tweedie: the denoiser is x + σ² s(x, σ).
    d = net.denoise(IMAGES, sigma)
    np.testing.assert_allclose(d, IMAGES + (sigma**2)[:, None, None] * s, rtol=1e-4, atol=1e-5)


def test_score_network_gradient_descends_multiscale_dsm():
    """Through nnx_score: a small step along -∇ lowers the DSM loss (same noise draw)."""
    net = NoiseConditionalConvScore(channels=(4, 8), embedding_features=4, rngs=nnx.Rngs(1))
    score_fn, params = umrf.models.nnx_score(net)
    assert score_fn(params, IMAGES[0], 0.3).shape == (8, 8)
    sigmas = umrf.losses.geometric_sigmas(2.0, 0.05, 5)
    x = jnp.asarray(umrf.models.load_digits().x_train[:32])
    key = jax.random.key(2)

    @jax.jit
    def loss_and_descended(p):
        def loss(q):
            return umrf.losses.multiscale_denoising_score_matching(
                score_fn, key, q, x, sigmas=sigmas
            )

        value, grad = jax.value_and_grad(loss)(p)
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grad)))
        stepped = jax.tree_util.tree_map(lambda a, g: a - 1e-3 * g / norm, p, grad)
        return value, loss(stepped), norm

    before, after, norm = loss_and_descended(params)
    assert np.isfinite(float(norm)) and float(norm) > 0
    assert float(after) < float(before)


def test_bad_input():
    with pytest.raises(ValueError, match="image_shape"):
        ConvClassifier(10, image_shape=(6, 6), channels=(4, 8, 8), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="channels"):
        ConvClassifier(10, channels=(), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_classes"):
        ConvClassifier(1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="stride"):
        Conv3x3(1, 1, stride=3, rngs=nnx.Rngs(0))
    net = ConvClassifier(10, channels=(4,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"\(B, 8, 8\)"):
        net(jnp.zeros((8, 8)))
    score = NoiseConditionalConvScore(channels=(4, 8), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="sigma"):
        score(jnp.zeros((2, 8, 8)), jnp.ones(3))
    with pytest.raises(ValueError, match="sigma_data"):
        NoiseConditionalConvScore(sigma_data=0.0, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="nnx.Module"):
        nnx_logits(lambda x: x)
