"""BernoulliRBM: exact log Z, free energy, pseudo-likelihood, block Gibbs, CD/PCD training.

Every exact answer is an independent brute-force enumeration of (v, h) in numpy float64.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import umrf
from umrf.models import BernoulliRBM


def logsumexp(a, axis=None):
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return out.item() if axis is None else np.squeeze(out, axis)


def configs(n):
    return np.asarray(list(itertools.product([0, 1], repeat=n)), np.float64)


def brute_force(W, b, c):
    """log Z, all visible configs and their exact log p(v), by enumerating (v, h)."""
    V, H = configs(W.shape[0]), configs(W.shape[1])
    neg_e = V @ b[:, None] + (H @ c)[None, :] + V @ W @ H.T  # (2^nv, 2^nh) = -E(v, h)
    log_z = logsumexp(neg_e)
    log_pv = logsumexp(neg_e, axis=1) - log_z
    return log_z, V, log_pv


def random_rbm(rng, nv, nh, scale=1.5, dtype=np.float64):
    W = rng.normal(scale=scale, size=(nv, nh)).astype(dtype)
    b = rng.normal(scale=scale, size=nv).astype(dtype)
    c = rng.normal(scale=scale, size=nh).astype(dtype)
    return W, b, c


SHAPES = [(1, 1), (3, 2), (5, 5), (6, 3), (4, 8)]


def test_exact_log_partition_equals_brute_force_float64_many_random_rbms():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for nv, nh in SHAPES:
            for trial in range(8):  # new weights, same shapes: no recompile
                W, b, c = random_rbm(rng, nv, nh, scale=0.25 + 0.5 * trial)
                rbm = BernoulliRBM(jnp.asarray(W), jnp.asarray(b), jnp.asarray(c))
                exact, _, _ = brute_force(W, b, c)
                got = float(rbm.log_partition())
                assert abs(got - exact) <= 1e-11 * max(1.0, abs(exact)), (nv, nh, got, exact)
                if min(nv, nh) >= 3:
                    chunked = float(rbm.log_partition(chunk_size=2))  # several chunks
                    assert abs(chunked - exact) <= 1e-11 * max(1.0, abs(exact))


def test_free_energy_sums_out_the_hidden_layer_and_log_likelihood_normalises():
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        W, b, c = random_rbm(rng, 5, 4)
        rbm = BernoulliRBM(jnp.asarray(W), jnp.asarray(b), jnp.asarray(c))
        _, V, log_pv = brute_force(W, b, c)
        got = np.asarray(jax.vmap(rbm.log_likelihood)(jnp.asarray(V)))
        np.testing.assert_allclose(got, log_pv, rtol=0, atol=1e-11)
        H = configs(4)
        v, h = V[7], H[5]
        assert float(rbm.joint_energy(v, h)) == pytest.approx(-(b @ v + c @ h + v @ W @ h), 1e-12)


def test_log_partition_gradient_is_the_model_expectation():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        W, b, c = random_rbm(rng, 4, 3)
        rbm = BernoulliRBM(jnp.asarray(W), jnp.asarray(b), jnp.asarray(c))
        g = jax.grad(lambda m: m.log_partition(chunk_size=2))(rbm)
        V, H = configs(4), configs(3)
        neg_e = V @ b[:, None] + (H @ c)[None, :] + V @ W @ H.T
        p = np.exp(neg_e - logsumexp(neg_e))  # p(v, h)
        np.testing.assert_allclose(np.asarray(g.W), V.T @ p @ H, atol=1e-12)
        np.testing.assert_allclose(np.asarray(g.b_visible), V.T @ p.sum(1), atol=1e-12)
        np.testing.assert_allclose(np.asarray(g.c_hidden), H.T @ p.sum(0), atol=1e-12)


def test_log_partition_at_scale_both_enumeration_directions_agree():
    """Z(W, b, c) = Z(Wᵀ, c, b): 2^17 hidden vs 2^18 visible configurations, independent sums."""
    rng = np.random.default_rng(3)
    W, b, c = random_rbm(rng, 18, 17, scale=0.3, dtype=np.float32)
    rbm = BernoulliRBM(W, b, c)
    flipped = BernoulliRBM(W.T, c, b)
    assert float(rbm.log_partition()) == pytest.approx(float(flipped.log_partition()), rel=2e-6)


def test_pseudo_log_likelihood_matches_enumerated_conditionals():
    rng = np.random.default_rng(4)
    with jax.enable_x64(True):
        W, b, c = random_rbm(rng, 5, 3)
        rbm = BernoulliRBM(jnp.asarray(W), jnp.asarray(b), jnp.asarray(c))
        _, V, log_pv = brute_force(W, b, c)
        index = {tuple(v.astype(int)): k for k, v in enumerate(V)}
        for v in V[[0, 9, 22, 31]]:
            want = 0.0
            for i in range(5):
                u = v.copy()
                u[i] = 1 - u[i]
                a, z = log_pv[index[tuple(v.astype(int))]], log_pv[index[tuple(u.astype(int))]]
                want += a - np.logaddexp(a, z)
            assert float(rbm.pseudo_log_likelihood(jnp.asarray(v))) == pytest.approx(want, 1e-10)


def test_bad_input_is_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="b_visible"):
        BernoulliRBM(jnp.zeros((3, 2)), jnp.zeros(4), jnp.zeros(2))
    with pytest.raises(ValueError, match="c_hidden"):
        BernoulliRBM(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        BernoulliRBM(jnp.full((3, 2), jnp.nan), jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="AIS"):
        BernoulliRBM(jnp.zeros((30, 30)), jnp.zeros(30), jnp.zeros(30)).log_partition()
    with pytest.raises(ValueError, match="power of two"):
        BernoulliRBM(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(2)).log_partition(chunk_size=3)
    rbm = BernoulliRBM(jnp.zeros((3, 2)), jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        rbm.free_energy(jnp.zeros(4))
    with pytest.raises(TypeError, match="BernoulliRBM"):
        umrf.samplers.rbm_gibbs(jnp.zeros(3))
    alg = umrf.samplers.gibbs(rbm)
    with pytest.raises(ValueError, match="binary"):
        alg.init(jnp.array([0, 2, 1]), rbm)
    with pytest.raises(ValueError, match="built for"):
        alg.init(jnp.zeros(3), BernoulliRBM(jnp.zeros((3, 4)), jnp.zeros(3), jnp.zeros(4)))
    with pytest.raises(ValueError, match="unit"):
        umrf.samplers.gibbs(rbm, evidence={5: 1})


# --------------------------------------------------------------------------- block Gibbs


def small_rbm(seed=5, nv=8, nh=4, scale=1.0):
    W, b, c = random_rbm(np.random.default_rng(seed), nv, nh, scale=scale, dtype=np.float32)
    return BernoulliRBM(W, b, c), (W.astype(np.float64), b.astype(np.float64), c.astype(np.float64))


@pytest.fixture(scope="module")
def gibbs_run():
    rbm, numbers = small_rbm()
    alg = umrf.samplers.gibbs(rbm)
    x0 = jnp.zeros((128, 8), jnp.int8)
    final, trace = umrf.sample_chains(alg, jax.random.key(0), rbm, x0, num_steps=1200)
    return rbm, numbers, alg, final, trace


def exact_visible_stats(W, b, c, pairs):
    _, V, log_pv = brute_force(W, b, c)
    p = np.exp(log_pv)
    single = V.T @ p
    pair = np.asarray([(V[:, i] * V[:, j]) @ p for i, j in pairs])
    return single, pair


PAIRS = [(0, 1), (2, 5), (3, 7), (4, 6)]


def test_block_gibbs_visible_marginals_match_enumeration(gibbs_run, assert_mc_close):
    rbm, (W, b, c), _, _, trace = gibbs_run
    assert not bool(trace.info.diverged.any())
    pos = np.asarray(trace.position[100:], np.float64)
    single, pair = exact_visible_stats(W, b, c, PAIRS)
    assert_mc_close(pos, single, what="P(v_i = 1)")
    assert_mc_close(np.stack([pos[..., i] * pos[..., j] for i, j in PAIRS], -1), pair, what="pairs")


def test_an_energy_ignoring_sampler_fails_the_same_check(gibbs_run, assert_mc_close):
    """Gibbs of the RBM without its weights (a factorised model) must fail the marginal check."""
    rbm, (W, b, c), alg, _, _ = gibbs_run
    wrong = BernoulliRBM(jnp.zeros_like(rbm.W), rbm.b_visible, rbm.c_hidden)
    _, trace = umrf.sample_chains(
        alg, jax.random.key(0), wrong, jnp.zeros((128, 8), jnp.int8), num_steps=1200
    )
    pos = np.asarray(trace.position[100:], np.float64)
    single, pair = exact_visible_stats(W, b, c, PAIRS)
    with pytest.raises(AssertionError):
        assert_mc_close(pos, single, what="P(v_i = 1)")
        assert_mc_close(
            np.stack([pos[..., i] * pos[..., j] for i, j in PAIRS], -1), pair, what="pairs"
        )


def test_block_gibbs_hidden_layer_is_drawn_from_its_conditional(gibbs_run, assert_mc_close):
    rbm, (W, b, c), _, final, _ = gibbs_run
    V, H = configs(8), configs(4)
    neg_e = V @ b[:, None] + (H @ c)[None, :] + V @ W @ H.T
    p = np.exp(neg_e - logsumexp(neg_e))
    exact_h = H.T @ p.sum(0)
    # the final hidden draws across 128 independent chains (~exact samples after 1200 sweeps)
    h = np.asarray(final.hidden, np.float64).reshape(32, 4, 4)  # independent: (draws, chains)
    assert_mc_close(h, exact_h, what="P(h_j = 1)")


def test_clamped_visible_units_never_change_and_the_rest_is_conditional(assert_mc_close):
    rbm, (W, b, c) = small_rbm(seed=6)
    alg = umrf.samplers.gibbs(rbm, evidence={0: 1, 3: 0})
    _, trace = umrf.sample_chains(
        alg, jax.random.key(1), rbm, jnp.zeros((128, 8), jnp.float32), num_steps=800
    )
    pos = np.asarray(trace.position[80:], np.float64)
    assert np.all(pos[..., 0] == 1) and np.all(pos[..., 3] == 0)
    _, V, log_pv = brute_force(W, b, c)
    keep = (V[:, 0] == 1) & (V[:, 3] == 0)
    p = np.exp(log_pv[keep] - logsumexp(log_pv[keep]))
    free = [1, 2, 4, 5, 6, 7]
    assert_mc_close(pos[..., free], (V[keep].T @ p)[free], what="P(v_i = 1 | evidence)")


def test_gibbs_value_equality_and_no_recompile_on_new_weights(count_compiles):
    rbm, _ = small_rbm(seed=7)
    alg = umrf.samplers.gibbs(rbm)
    x0 = jnp.zeros((16, 8), jnp.int8)
    umrf.sample_chains(alg, jax.random.key(0), rbm, x0, num_steps=5)
    other, _ = small_rbm(seed=8)
    rebuilt = umrf.samplers.gibbs(other)
    assert rebuilt == alg and hash(rebuilt) == hash(alg)
    assert umrf.samplers.rbm_gibbs(other, evidence={1: 0}) != alg
    with count_compiles() as c:
        final, _ = umrf.sample_chains(rebuilt, jax.random.key(0), other, x0, num_steps=5)
        jax.block_until_ready(final)
    assert c.compiles == 0 and c.traces == 0


def test_gibbs_on_eight_devices_draws_the_same_states():
    rbm, _ = small_rbm(seed=9)
    alg = umrf.samplers.gibbs(rbm)
    x0 = jnp.zeros((16, 8), jnp.int8)
    one, _ = umrf.sample_chains(alg, jax.random.key(3), rbm, x0, num_steps=20)
    mesh = umrf.sharding.chains_mesh()
    assert mesh.shape["chains"] == 8
    many, _ = umrf.sample_chains(alg, jax.random.key(3), rbm, x0, num_steps=20, mesh=mesh)
    np.testing.assert_array_equal(np.asarray(one.position), np.asarray(many.position))


def test_gibbs_under_jit_flags_non_binary_traced_states():
    rbm, _ = small_rbm(seed=10)
    alg = umrf.samplers.gibbs(rbm)

    @jax.jit
    def step(x):
        return alg.step(jax.random.key(0), alg.init(x, rbm), rbm)[1].diverged

    assert not bool(step(jnp.zeros(8, jnp.int32)))
    assert bool(step(jnp.full(8, 2, jnp.int32)))
    nan_rbm = BernoulliRBM.tree_unflatten(None, (rbm.W * jnp.nan, rbm.b_visible, rbm.c_hidden))
    _, info = alg.step(jax.random.key(0), alg.init(jnp.zeros(8), rbm), nan_rbm)
    assert bool(info.diverged)


# --------------------------------------------------------------------------- training


def test_cd_loss_on_the_free_energy_with_exact_negatives_is_the_likelihood_gradient():
    """contrastive_divergence(F, ·) with all v weighted by p(v) has the exact NLL gradient."""
    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        W, b, c = random_rbm(rng, 5, 3, scale=0.7)
        rbm = BernoulliRBM(jnp.asarray(W), jnp.asarray(b), jnp.asarray(c))
        data = jnp.asarray(rng.integers(0, 2, size=(20, 5)), jnp.float64)
        free_energy = umrf.models.relaxation(rbm).energy_fn
        V = jnp.asarray(configs(5))
        w = jnp.exp(jax.vmap(rbm.log_likelihood)(V))

        def cd(m):
            return umrf.losses.contrastive_divergence(free_energy, m, data, V, model_weights=w)

        def nll(m):
            lz = m.log_partition()
            return -jnp.mean(jax.vmap(lambda v: m.log_likelihood(v, log_z=lz))(data))

        g_cd, g_nll = jax.jit(jax.grad(cd))(rbm), jax.jit(jax.grad(nll))(rbm)
        for a, e in zip(
            jax.tree_util.tree_leaves(g_cd), jax.tree_util.tree_leaves(g_nll), strict=True
        ):
            np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=1e-10)


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_and_pcd_epochs_raise_the_exact_log_likelihood(persistent, count_compiles):
    rng = np.random.default_rng(12)
    # data from a "teacher" RBM: training must move towards it
    teacher, _ = small_rbm(seed=13, nv=10, nh=3, scale=2.0)
    x0 = jnp.zeros((300, 10), jnp.float32)
    final, _ = umrf.sample_chains(
        umrf.samplers.gibbs(teacher), jax.random.key(14), teacher, x0, num_steps=200
    )
    data = final.position
    rbm = BernoulliRBM.random(jax.random.key(15), 10, 3, scale=0.01)
    loss_fn = umrf.training.contrastive_divergence_loss(
        umrf.samplers.gibbs(rbm),
        umrf.models.relaxation(rbm).energy_fn,
        num_steps=1 if persistent else 3,
        persistent=persistent,
    )
    opt = optax.sgd(0.1)
    chains = jnp.asarray(rng.integers(0, 2, size=(20, 10)), jnp.float32)
    state = umrf.training.init_train_state(opt, jax.random.key(16), rbm, extra=chains)

    def mean_ll(m):
        lz = m.log_partition()
        return float(jnp.mean(jax.vmap(lambda v: m.log_likelihood(v, log_z=lz))(data)))

    before = mean_ll(rbm)
    state, losses = umrf.training.train_epoch(loss_fn, opt, state, data, batch_size=20)
    assert losses.shape == (15,) and bool(jnp.isfinite(losses).all())
    with count_compiles() as c:  # later epochs reuse the compiled program
        for _ in range(7):
            state, losses = umrf.training.train_epoch(loss_fn, opt, state, data, batch_size=20)
        jax.block_until_ready(losses)
    assert c.compiles == 0
    assert int(state.step) == 8 * 15
    after = mean_ll(state.params)
    assert after > before + 0.5, (before, after)
    if not persistent:
        np.testing.assert_array_equal(np.asarray(state.extra), np.asarray(chains))


def test_train_epoch_stops_applying_updates_after_a_non_finite_loss():
    def loss_fn(key, p, batch, extra):
        loss = jnp.mean((batch - p) ** 2)
        return jnp.where(extra + 1 >= 3, jnp.nan, loss), extra + 1

    opt = optax.sgd(0.1)
    state = umrf.training.init_train_state(opt, jax.random.key(0), jnp.zeros(()), extra=0)
    state, losses = umrf.training.train_epoch(loss_fn, opt, state, jnp.ones(50), batch_size=10)
    assert np.isfinite(np.asarray(losses[:2])).all() and np.isnan(np.asarray(losses[2:])).all()
    assert int(state.step) == 2 and int(state.extra) == 2
    assert np.isfinite(float(state.params))
