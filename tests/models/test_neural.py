"""NNX adapters and MLP energies/scores: batching, gradients, no recompile, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import umrf
from umrf.models import (
    MLPEnergy,
    MLPScore,
    NoiseConditionalMLPEnergy,
    NoiseConditionalMLPScore,
    nnx_energy,
    nnx_score,
)

X = jax.random.normal(jax.random.key(0), (7, 2))


def test_energy_adapter_matches_batched_module_call():
    module = MLPEnergy(2, (16, 16), rngs=nnx.Rngs(0))
    energy_fn, params = nnx_energy(module)
    assert isinstance(params, nnx.State)
    per_example = jax.vmap(energy_fn, in_axes=(None, 0))(params, X)
    np.testing.assert_allclose(per_example, module(X), rtol=1e-6)
    assert energy_fn(params, X[0]).shape == ()


def test_params_train_with_optax_and_copy_back():
    module = MLPEnergy(2, (8,), rngs=nnx.Rngs(1))
    energy_fn, params = nnx_energy(module)
    opt = optax.adam(1e-2)
    state = opt.init(params)
    loss = jax.jit(lambda p: umrf.losses.score_matching(energy_fn, p, X))

    @jax.jit
    def step(params, state):
        g = jax.grad(loss)(params)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state

    l0 = float(loss(params))
    for _ in range(20):
        params, state = step(params, state)
    assert float(loss(params)) < l0
    nnx.update(module, params)
    np.testing.assert_allclose(
        module(X), jax.vmap(energy_fn, in_axes=(None, 0))(params, X), rtol=1e-6
    )


def test_confinement_adds_quadratic():
    a = MLPEnergy(2, (8,), confinement=0.0, rngs=nnx.Rngs(2))
    b = MLPEnergy(2, (8,), confinement=0.3, rngs=nnx.Rngs(2))
    np.testing.assert_allclose(b(X) - a(X), 0.15 * jnp.sum(X**2, axis=1), rtol=1e-5, atol=1e-6)


def test_noise_conditional_energy_and_scores():
    sig = jnp.array(0.5)
    module = NoiseConditionalMLPEnergy(2, (16,), rngs=nnx.Rngs(3))
    energy_fn, params = nnx_energy(module, noise_conditional=True)
    sigmas = jnp.full((7,), 0.5)
    np.testing.assert_allclose(
        jax.vmap(energy_fn, in_axes=(None, 0, None))(params, X, sig), module(X, sigmas), rtol=1e-6
    )

    def score_nc(p, x, s):
        return -jax.grad(energy_fn, argnums=1)(p, x, s)

    loss = umrf.losses.multiscale_denoising_score_matching(
        score_nc, jax.random.key(0), params, X, sigmas=[1.0, 0.5]
    )
    assert np.isfinite(float(loss))

    net = NoiseConditionalMLPScore(2, (16,), rngs=nnx.Rngs(4))
    score_fn, sparams = nnx_score(net)
    out = jax.vmap(score_fn, in_axes=(None, 0, None))(sparams, X, sig)
    np.testing.assert_allclose(out, net(X, sigmas), rtol=1e-6)
    # NCSNv2 output scaling: σ·s(x, σ) is the raw network output
    out2 = jax.vmap(score_fn, in_axes=(None, 0, None))(sparams, X, 2 * sig)
    assert out.shape == (7, 2) and not np.allclose(out, out2)

    plain = MLPScore(2, (16,), rngs=nnx.Rngs(5))
    sfn, p = nnx_score(plain, noise_conditional=False)
    np.testing.assert_allclose(jax.vmap(sfn, in_axes=(None, 0))(p, X), plain(X), rtol=1e-6)
    loss = umrf.losses.denoising_score_matching(sfn, jax.random.key(1), p, X, sigma=0.1)
    assert np.isfinite(float(loss))


def test_no_recompile_on_new_params():
    module = MLPEnergy(2, (8,), rngs=nnx.Rngs(6))
    energy_fn, params = nnx_energy(module)
    other = nnx_energy(MLPEnergy(2, (8,), rngs=nnx.Rngs(7)))[1]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(p, x):
        return jax.vmap(energy_fn, in_axes=(None, 0))(p, x)

    a = f(params, X)
    b = f(other, X)
    assert not np.allclose(a, b)


def test_bad_inputs():
    with pytest.raises(TypeError, match="nnx.Module"):
        nnx_energy(lambda x: x)
    with pytest.raises(TypeError, match="nnx.Module"):
        nnx_score(object())
    wide = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    energy_fn, params = nnx_energy(wide)
    with pytest.raises(ValueError, match="one energy per example"):
        energy_fn(params, X[0])
    with pytest.raises(ValueError, match="hidden_features"):
        MLPEnergy(2, (), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="in_features"):
        MLPScore(0, (4,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="confinement"):
        MLPEnergy(2, (4,), confinement=-1.0, rngs=nnx.Rngs(0))


def test_fourier_features_are_fixed_not_trained():
    module = MLPEnergy(2, (8,), fourier_features=5, fourier_scale=2.0, rngs=nnx.Rngs(0))
    energy_fn, params = nnx_energy(module)
    names = {str(path) for path, _ in jax.tree_util.tree_leaves_with_path(params)}
    assert names and all("layers" in n for n in names)
    assert not any("freqs" in n for n in names)  # frequencies are constants, not Params
    assert module.layers[0].in_features == 2 + 2 * 5
    np.testing.assert_allclose(
        jax.vmap(energy_fn, in_axes=(None, 0))(params, X), module(X), rtol=1e-6
    )
    # the embedding is [x, sin(xB), cos(xB)]
    B = module.freqs[...]
    z = X @ B
    plain = MLPEnergy(12, (8,), rngs=nnx.Rngs(1))
    plain.layers = module.layers
    np.testing.assert_allclose(
        plain(jnp.concatenate([X, jnp.sin(z), jnp.cos(z)], -1)), module(X), rtol=1e-6
    )
    with pytest.raises(ValueError, match="fourier_features"):
        MLPEnergy(2, (4,), fourier_features=-1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="fourier_scale"):
        NoiseConditionalMLPScore(2, (4,), fourier_features=2, fourier_scale=0.0, rngs=nnx.Rngs(0))


def test_silu_matches_jax_silu_with_closed_form_derivatives():
    """umrf's SiLU: same values and derivatives (to third order) as autodiff of x·σ(x)."""
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        x = jnp.linspace(-8.0, 8.0, 33)
        reference = jax.nn.silu
        ours = umrf.models.silu
        np.testing.assert_allclose(ours(x), reference(x), rtol=1e-14)
        d1, d1_ref = jax.vmap(jax.grad(ours))(x), jax.vmap(jax.grad(reference))(x)
        np.testing.assert_allclose(d1, d1_ref, rtol=1e-12, atol=1e-14)
        d2 = jax.vmap(jax.grad(jax.grad(ours)))(x)
        d2_ref = jax.vmap(jax.grad(jax.grad(reference)))(x)
        np.testing.assert_allclose(d2, d2_ref, rtol=1e-12, atol=1e-14)
        check_grads(ours, (x,), order=3, modes=["fwd", "rev"])
