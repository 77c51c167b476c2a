"""Annealed importance sampling: within 3 of its own standard errors of the exact log Z on a 64x16
RBM (exact chunked enumeration), a random loopy DiscreteMRF (variable elimination) and a Gaussian
(closed form); a kernel that does not leave the path invariant fails the same check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import umrf
from umrf.models import BernoulliRBM, DiscreteMRF, Factor


def assert_within(res, exact, what, *, max_stderr):
    err = float(res.log_z) - float(exact)
    se = float(res.log_z_stderr)
    assert np.isfinite(se) and se < max_stderr, (what, se)  # the check has power
    assert abs(err) <= 3 * se, (what, float(res.log_z), float(exact), se, float(res.ess))


@pytest.fixture(scope="module")
def rbm_case():
    rng = np.random.default_rng(0)
    W = rng.normal(scale=0.3, size=(64, 16)).astype(np.float32)
    b = rng.normal(scale=0.5, size=64).astype(np.float32)
    c = rng.normal(scale=0.5, size=16).astype(np.float32)
    rbm = BernoulliRBM(W, b, c)
    # "data" for the base rate: samples of the RBM itself (block Gibbs)
    final, _ = umrf.sample_chains(
        umrf.samplers.gibbs(rbm),
        jax.random.key(1),
        rbm,
        jnp.zeros((500, 64), jnp.int8),
        num_steps=100,
    )
    return rbm, umrf.inference.rbm_base_rate_path(final.position)


def test_rbm_64x16_base_rate_ais_is_within_three_standard_errors(rbm_case):
    rbm, path = rbm_case
    exact = rbm.log_partition()  # 2^16 hidden configurations, exact
    res = umrf.inference.ais(
        umrf.samplers.gibbs(rbm),
        path,
        jax.random.key(2),
        rbm,
        num_chains=256,
        num_temperatures=1000,
    )
    assert_within(res, exact, "RBM 64x16", max_stderr=0.05)
    assert int(res.num_diverged) == 0 and float(res.ess) > 100
    assert res.log_weights.shape == (256,) and res.samples.shape == (256, 64)
    base_log_z = float(jnp.sum(jax.nn.softplus(path.visible_bias)) + 16 * np.log(2.0))
    assert float(res.log_z_base) == pytest.approx(base_log_z, rel=1e-6)


def test_a_kernel_that_ignores_the_path_fails_the_same_check(rbm_case):
    """Gibbs of the *target* RBM at every temperature does not leave f_β invariant: biased."""
    rbm, path = rbm_case

    @jax.tree_util.register_pytree_node_class
    class WrongPath(umrf.inference.RBMBaseRatePath):
        def kernel_params(self, params, beta):
            return params

    wrong = WrongPath(path.visible_bias)
    res = umrf.inference.ais(
        umrf.samplers.gibbs(rbm),
        wrong,
        jax.random.key(2),
        rbm,
        num_chains=256,
        num_temperatures=1000,
    )
    with pytest.raises(AssertionError):
        assert_within(res, rbm.log_partition(), "wrong kernel", max_stderr=10.0)


def loopy_mrf(seed):
    rng = np.random.default_rng(seed)
    cards = [2, 3, 2, 2, 3, 2]
    scopes = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (1, 4), (0, 2, 3), (4,)]
    factors = [Factor(s, rng.normal(scale=0.8, size=[cards[v] for v in s])) for s in scopes]
    return DiscreteMRF(cards, factors)


@pytest.mark.parametrize("kernel", ["gwg", "dmala"])
def test_random_loopy_mrf_ais_is_within_three_standard_errors(kernel):
    mrf = loopy_mrf(3)
    exact = umrf.inference.log_partition(mrf)
    relaxed = umrf.models.relaxation(mrf)
    base = umrf.models.FactorizedCategorical.uniform(mrf.cardinalities)
    path = umrf.inference.geometric_path(
        relaxed.energy_fn, base, num_categories=relaxed.num_categories
    )
    if kernel == "gwg":
        alg = umrf.samplers.gwg(path.energy, num_categories=relaxed.num_categories)
    else:
        alg = umrf.samplers.dmala(path.energy, step_size=0.5, num_categories=relaxed.num_categories)
    res = umrf.inference.ais(
        alg, path, jax.random.key(4), mrf, num_chains=256, num_temperatures=300
    )
    assert_within(res, exact, f"loopy MRF, {kernel}", max_stderr=0.05)
    assert float(res.log_z_base) == pytest.approx(float(np.log(np.prod(mrf.cardinalities))), 1e-6)


def test_gaussian_ais_is_within_three_standard_errors_of_the_closed_form():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(5, 5))
    precision = a @ a.T / 5 + 0.5 * np.eye(5)
    target = umrf.models.Gaussian(jnp.asarray(rng.normal(size=5), jnp.float32), precision)
    base = umrf.models.Gaussian(jnp.zeros(5), 0.25 * jnp.eye(5))  # broad: covers the target

    def energy(params, x):
        return params.energy(x) + 3.0  # an offset: log Z shifts by -3

    path = umrf.inference.geometric_path(energy, base)
    alg = umrf.samplers.mala(path.energy, step_size=0.1)
    res = umrf.inference.ais(
        alg, path, jax.random.key(6), target, num_chains=512, num_temperatures=300, num_steps=2
    )
    exact = float(target.log_partition()) - 3.0
    assert_within(res, exact, "Gaussian", max_stderr=0.05)


def test_target_equal_to_base_gives_exact_zero_weights_and_full_ess():
    base = umrf.models.FactorizedBernoulli(jnp.array([0.3, -1.0, 2.0]))
    path = umrf.inference.geometric_path(lambda p, x: p.energy(x), base)
    alg = umrf.samplers.gwg(path.energy)
    res = umrf.inference.ais(alg, path, jax.random.key(7), base, num_chains=64, num_temperatures=5)
    np.testing.assert_array_equal(np.asarray(res.log_weights), 0.0)
    assert float(res.log_z) == pytest.approx(float(base.log_partition()), rel=1e-6)
    assert float(res.ess) == pytest.approx(64.0) and float(res.log_z_stderr) == 0.0


def test_new_params_and_schedules_do_not_recompile_and_ais_runs_under_jit(count_compiles):
    rng = np.random.default_rng(8)
    rbms = [
        BernoulliRBM(rng.normal(scale=0.2, size=(10, 4)), np.zeros(10), np.zeros(4))
        for _ in range(2)
    ]
    path = umrf.inference.rbm_base_rate_path(np.full(10, 0.4))
    alg = umrf.samplers.gibbs(rbms[0])
    first = umrf.inference.ais(
        alg, path, jax.random.key(0), rbms[0], num_chains=32, num_temperatures=50
    )
    with count_compiles() as c:
        again = umrf.inference.ais(
            umrf.samplers.gibbs(rbms[1]),
            path,
            jax.random.key(1),
            rbms[1],
            num_chains=32,
            betas=umrf.inference.ais_betas(50, schedule="linear"),
        )
        jax.block_until_ready(again.log_z)
    assert c.compiles == 0
    jitted = jax.jit(
        lambda m, k: umrf.inference.ais(alg, path, k, m, num_chains=32, num_temperatures=50).log_z
    )
    np.testing.assert_allclose(
        float(jitted(rbms[0], jax.random.key(0))), float(first.log_z), rtol=1e-5
    )


def test_schedules_and_bad_input():
    lin = umrf.inference.ais_betas(4, schedule="linear")
    np.testing.assert_allclose(lin, [0.0, 0.25, 0.5, 0.75, 1.0])
    sig = umrf.inference.ais_betas(100)
    assert sig[0] == 0.0 and sig[-1] == 1.0 and np.all(np.diff(sig) > 0)
    assert np.diff(sig)[0] < np.diff(sig)[50]  # denser at the ends
    with pytest.raises(ValueError, match="schedule"):
        umrf.inference.ais_betas(10, schedule="cosine")
    rbm = BernoulliRBM(np.zeros((3, 2)), np.zeros(3), np.zeros(2))
    path = umrf.inference.rbm_base_rate_path(np.full(3, 0.5))
    alg = umrf.samplers.gibbs(rbm)
    with pytest.raises(ValueError, match="betas"):
        umrf.inference.ais(alg, path, jax.random.key(0), rbm, num_chains=8, betas=[0.1, 1.0])
    with pytest.raises(ValueError, match="num_chains"):
        umrf.inference.ais(alg, path, jax.random.key(0), rbm, num_chains=1)
    with pytest.raises(TypeError, match="path"):
        umrf.inference.ais(alg, object(), jax.random.key(0), rbm, num_chains=8)
    with pytest.raises(TypeError, match="SamplingAlgorithm"):
        umrf.inference.ais(None, path, jax.random.key(0), rbm, num_chains=8)
    with pytest.raises(ValueError, match="visible units"):
        umrf.inference.ais(
            alg,
            umrf.inference.rbm_base_rate_path(np.full(4, 0.5)),
            jax.random.key(0),
            rbm,
            num_chains=8,
        )
    with pytest.raises(ValueError, match="binary"):
        umrf.inference.rbm_base_rate_path(np.full(3, 2.0))
    with pytest.raises(TypeError, match="base"):
        umrf.inference.geometric_path(lambda p, x: 0.0, object())
