"""JEM: the loss against exact answers, the SGLD mapping, value equality and no recompiles.

The exactly solvable model: Gaussian logits ``f(x)[y] = -½‖x - μ_y‖² + b_y``. Then

* ``p(x) ∝ Σ_y exp(f(x)[y])`` is the mixture ``Σ_y π_y N(μ_y, I)`` with
  ``π = softmax(b)`` and ``log Z = logsumexp(b) + (d/2) log 2π``, sampled
  exactly by ``y ∼ π``, ``x = μ_y + ε``;
* ``p(x | y) = N(μ_y, I)`` (``b_y`` cancels).

So the exact negative log-likelihood gradient is known in closed form, and
the CD terms of :func:`umrf.losses.jem` with exact negatives must match it
within Monte Carlo error (the standard error of the negatives' average).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import umrf

K, D = 3, 2
PARAMS = {
    "mu": jnp.array([[-2.0, 0.0], [1.5, 1.0], [0.5, -2.5]]),
    "b": jnp.array([0.3, -0.4, 0.8]),
}


def gaussian_logits(p, x):
    return -0.5 * jnp.sum((x[None, :] - p["mu"]) ** 2, axis=-1) + p["b"]


def exact_mixture(key, p, n):
    k_y, k_e = jax.random.split(key)
    y = jax.random.categorical(k_y, p["b"], shape=(n,))
    return p["mu"][y] + jax.random.normal(k_e, (n, D)), y


DATA_X = jax.random.normal(jax.random.key(10), (64, D)) * 1.5 + jnp.array([[0.3, -0.2]])
DATA_Y = jax.random.randint(jax.random.key(11), (64,), 0, K)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


def test_classifier_term_is_optax_cross_entropy():
    x = jax.random.normal(jax.random.key(0), (16, D))
    y = jnp.array([0, 1, 2, 1] * 4)
    loss, info = umrf.losses.jem(
        gaussian_logits, PARAMS, x, y, x, generative_weight=0.0, return_info=True
    )
    logits = jax.vmap(gaussian_logits, in_axes=(None, 0))(PARAMS, x)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(info.classifier_loss, expected, rtol=1e-6)
    assert float(info.accuracy) == float(np.mean(np.argmax(logits, 1) == np.asarray(y)))
    assert info.energy_data_conditional is None and bool(info.is_finite)
    g = jax.grad(umrf.losses.jem, argnums=1)(
        gaussian_logits, PARAMS, x, y, x, generative_weight=0.0
    )
    g_ref = jax.grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(
            jax.vmap(gaussian_logits, in_axes=(None, 0))(p, x), y
        ).mean()
    )(PARAMS)
    chex.assert_trees_all_close(g, g_ref, rtol=1e-5, atol=1e-7)


def test_marginal_energy_is_logsumexp_of_the_joint_energies():
    energy = umrf.losses.jem_energy(gaussian_logits)
    class_energy = umrf.losses.jem_class_energy(gaussian_logits)
    for x in DATA_X[:5]:
        joint = jnp.stack([class_energy(PARAMS, (x, jax.nn.one_hot(y, K))) for y in range(K)])
        np.testing.assert_allclose(joint, -gaussian_logits(PARAMS, x), rtol=1e-6)
        np.testing.assert_allclose(
            energy(PARAMS, x), -jax.nn.logsumexp(-joint), rtol=1e-6, atol=1e-6
        )


def exact_nll_grad(p, x):
    """∇ of -mean log p(x) = mean E(x) + log Z, log Z = logsumexp(b) + const."""

    def nll(q):
        e = -jax.nn.logsumexp(jax.vmap(gaussian_logits, in_axes=(None, 0))(q, x), axis=-1)
        return jnp.mean(e) + jax.nn.logsumexp(q["b"])

    return jax.grad(nll)(p)


def generative_grad(negatives):
    return jax.grad(umrf.losses.jem, argnums=1)(
        gaussian_logits, PARAMS, DATA_X, DATA_Y, negatives, classifier_weight=0.0
    )


def standard_error(negatives):
    """Standard error of the negatives' average gradient -mean_j ∇E(x̃_j), per parameter."""
    energy = umrf.losses.jem_energy(gaussian_logits)
    per = jax.jit(jax.vmap(jax.grad(energy), in_axes=(None, 0)))(PARAMS, negatives)
    stacked = np.concatenate(
        [np.asarray(a).reshape(a.shape[0], -1) for a in jax.tree_util.tree_leaves(per)], axis=1
    )
    return stacked.std(0) / np.sqrt(stacked.shape[0])


def test_generative_gradient_is_the_cd_identity_with_exact_negatives():
    negatives, _ = exact_mixture(jax.random.key(1), PARAMS, 200_000)
    est, exact = flat(generative_grad(negatives)), flat(exact_nll_grad(PARAMS, DATA_X))
    se = standard_error(negatives)
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-6), (est - exact, se)
    # Sabotage: negatives from the wrong mixture weights (uniform) fail the same check.
    k_y, k_e = jax.random.split(jax.random.key(2))
    y = jax.random.randint(k_y, (200_000,), 0, K)
    wrong = PARAMS["mu"][y] + jax.random.normal(k_e, (200_000, D))
    bad = flat(generative_grad(wrong))
    assert np.any(np.abs(bad - exact) > 5 * standard_error(wrong) + 1e-6)


def test_conditional_term_with_exact_conditional_negatives():
    """p(x|y) = N(μ_y, I): with ỹ = y the b-gradient cancels exactly, the μ-gradient is
    -mean_i [y_i = c](x_i - μ_c) up to Monte Carlo error."""
    reps = 2000
    y_model = jnp.tile(DATA_Y, reps)
    x_model = PARAMS["mu"][y_model] + jax.random.normal(jax.random.key(3), (y_model.shape[0], D))
    g = jax.grad(umrf.losses.jem, argnums=1)(
        gaussian_logits,
        PARAMS,
        DATA_X,
        DATA_Y,
        DATA_X,  # p(x) term off below
        x_model_conditional=x_model,
        y_model=y_model,
        classifier_weight=0.0,
        generative_weight=0.0,
    )
    np.testing.assert_allclose(g["b"], 0.0, atol=1e-6)
    onehot = jax.nn.one_hot(DATA_Y, K)
    exact_mu = -(onehot.T @ (DATA_X - PARAMS["mu"][DATA_Y])) / DATA_X.shape[0]
    counts = np.asarray(onehot.sum(0))[:, None]
    se = np.sqrt(counts / DATA_X.shape[0] ** 2 / reps)  # per class: count/n · 1/sqrt(count·reps)
    assert np.all(np.abs(np.asarray(g["mu"]) - np.asarray(exact_mu)) <= 5 * se)
    _, info = umrf.losses.jem(
        gaussian_logits,
        PARAMS,
        DATA_X,
        DATA_Y,
        DATA_X,
        x_model_conditional=x_model,
        y_model=y_model,
        return_info=True,
    )
    assert info.energy_model_conditional is not None


def test_sgld_is_jems_update_through_the_temperature():
    """One step of jem_sgld is x - α∇E(x) + σ ε with the sampler's own normal draw ε."""
    energy = umrf.losses.jem_energy(gaussian_logits)
    x = jnp.array([0.4, -1.2])
    key = jax.random.key(4)
    eps = jax.random.normal(key, x.shape)
    for alpha, sigma in [(1.0, 0.01), (0.5, 0.1), (2.0, 0.003)]:
        alg = umrf.losses.jem_sgld(energy, step_size=alpha, noise_scale=sigma)
        state, info = alg.step(key, alg.init(x, PARAMS), PARAMS)
        expected = x - alpha * jax.grad(energy, argnums=1)(PARAMS, x) + sigma * eps
        np.testing.assert_allclose(state.position, expected, rtol=1e-5, atol=1e-6)
        assert not bool(info.diverged)
    assert umrf.losses.jem_sgld(energy) == umrf.samplers.ula(
        energy, step_size=0.01**2 / 2, temperature=0.01**2 / 2
    )


def test_class_conditional_sampling_targets_each_chains_class(assert_mc_close):
    """MALA on E(x|y) with one label per chain: chain c samples N(μ_{y_c}, I) exactly."""
    class_energy = umrf.losses.jem_class_energy(gaussian_logits)
    alg = umrf.samplers.mala(class_energy, step_size=0.5)
    labels = jnp.arange(384) % K
    pos = umrf.losses.jem_class_position(jnp.zeros((384, D)), labels, num_classes=K)
    _, trace = umrf.sample_chains(alg, jax.random.key(5), PARAMS, pos, num_steps=400, thin=2)
    x = np.asarray(trace.position.value[0])[20:]
    for c in range(K):
        draws = x[:, c::K]
        mu = np.asarray(PARAMS["mu"][c])
        stats = np.concatenate([draws, (draws - mu) ** 2], axis=-1)
        assert_mc_close(stats, np.concatenate([mu, np.ones(D)]), z=5.0, floor=0.0)
    # the labels never move, bit for bit
    onehot = np.asarray(trace.position.value[1])
    assert np.array_equal(onehot, np.broadcast_to(np.eye(K)[np.asarray(labels)], onehot.shape))


def test_buffer_defaults_and_constants():
    buf = umrf.losses.jem_replay_buffer((8, 8))
    assert (buf.capacity, buf.reinit_prob) == (10_000, 0.05)
    state = buf.init(jax.random.key(0))
    assert state.samples.shape == (10_000, 8, 8)
    assert -1.0 <= float(state.samples.min()) and float(state.samples.max()) <= 1.0
    assert umrf.losses.JEM_SGLD_STEPS == 20
    assert (umrf.losses.JEM_SGLD_STEP_SIZE, umrf.losses.JEM_SGLD_NOISE) == (1.0, 0.01)
    assert buf == umrf.losses.jem_replay_buffer((8, 8))


def test_value_equality_and_no_recompiles(count_compiles):
    energy = umrf.losses.jem_energy(gaussian_logits)
    assert energy == umrf.losses.jem_energy(gaussian_logits)
    assert hash(energy) == hash(umrf.losses.jem_energy(gaussian_logits))
    assert umrf.losses.jem_class_energy(gaussian_logits) == umrf.losses.jem_class_energy(
        gaussian_logits
    )
    assert umrf.losses.jem_sgld(energy) == umrf.losses.jem_sgld(
        umrf.losses.jem_energy(gaussian_logits)
    )
    buf = umrf.losses.jem_replay_buffer((D,), capacity=256)
    traces = []

    @jax.jit
    def step(p, buffer_state, key):
        traces.append(1)

        def loss(q):
            # the sampler is rebuilt at every trace: equal, so one cached program
            alg = umrf.losses.jem_sgld(umrf.losses.jem_energy(gaussian_logits))
            x_model, new_state, _ = umrf.samplers.replay_negatives(
                alg, buf, key, q, buffer_state, batch_size=32, num_steps=5
            )
            return umrf.losses.jem(gaussian_logits, q, DATA_X, DATA_Y, x_model), new_state

        (value, new_state), g = jax.value_and_grad(loss, has_aux=True)(p)
        return value, new_state, g

    buffer_state = buf.init(jax.random.key(0))
    step(PARAMS, buffer_state, jax.random.key(1))
    inputs = [
        (jax.tree_util.tree_map(lambda a, i=i: a + 0.1 * (i + 1), PARAMS), jax.random.key(i))
        for i in range(3)
    ]
    with count_compiles() as c:
        for new, key in inputs:
            value, buffer_state, _ = step(new, buffer_state, key)
    assert len(traces) == 1 and c.compiles == 0 and c.traces == 0
    # eager negatives: run_chains reuses its program for a rebuilt sampler and new params
    alg = umrf.losses.jem_sgld(energy)
    umrf.samplers.run_chains(alg, jax.random.key(0), PARAMS, DATA_X, num_steps=3)
    new, key = jax.tree_util.tree_map(lambda a: a * 1.1, PARAMS), jax.random.key(1)
    with count_compiles() as c:
        rebuilt = umrf.losses.jem_sgld(umrf.losses.jem_energy(gaussian_logits))
        umrf.samplers.run_chains(rebuilt, key, new, DATA_X, num_steps=3)
    assert c.compiles == 0


def test_non_finite_logits_are_reported_not_replaced():
    def logits(p, x):
        return gaussian_logits(p, x) * jnp.where(x[0] > 100.0, jnp.nan, 1.0)

    x_model = DATA_X.at[0, 0].set(1000.0)
    loss, info = jax.jit(
        lambda p: umrf.losses.jem(logits, p, DATA_X, DATA_Y, x_model, return_info=True)
    )(PARAMS)
    assert not np.isfinite(float(loss)) and not bool(info.is_finite)
    assert int(info.num_nonfinite) == K


def test_bad_input():
    x, y = DATA_X[:4], DATA_Y[:4]
    jem = umrf.losses.jem
    with pytest.raises(ValueError, match="`y`"):
        jem(gaussian_logits, PARAMS, x, y[:3], x)
    with pytest.raises(ValueError, match="`y`"):
        jem(gaussian_logits, PARAMS, x, y.astype(float), x)
    with pytest.raises(ValueError, match="lie in"):
        jem(gaussian_logits, PARAMS, x, y + 5, x)
    with pytest.raises(ValueError, match="x_model"):
        jem(gaussian_logits, PARAMS, x, y, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        jem(gaussian_logits, PARAMS, x.at[0, 0].set(jnp.nan), y, x)
    with pytest.raises(ValueError, match="alpha"):
        jem(gaussian_logits, PARAMS, x, y, x, alpha=-1.0)
    with pytest.raises(ValueError, match="y_model"):
        jem(gaussian_logits, PARAMS, x, y, x, x_model_conditional=x)
    with pytest.raises(ValueError, match="x_model_conditional"):
        jem(gaussian_logits, PARAMS, x, y, x, y_model=y)
    with pytest.raises(ValueError, match="vector"):
        jem(lambda p, x: jnp.sum(x), PARAMS, x, y, x)
    with pytest.raises(TypeError, match="logits_fn"):
        umrf.losses.jem_energy("f")
    with pytest.raises(ValueError, match="noise_scale"):
        umrf.losses.jem_sgld(umrf.losses.jem_energy(gaussian_logits), noise_scale=0.0)
    with pytest.raises(ValueError, match="leading axes"):
        umrf.losses.jem_class_position(jnp.zeros((4, 2)), jnp.zeros(3, int), num_classes=K)
    with pytest.raises(ValueError, match="lie in"):
        umrf.losses.jem_class_position(jnp.zeros((4, 2)), jnp.full(4, K), num_classes=K)
