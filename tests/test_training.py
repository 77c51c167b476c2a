"""Training helper: bit-for-bit resume, checkpoints, divergence stop, data parallelism."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import Mesh

import umrf
from umrf import training

DATA = jnp.asarray(
    np.random.default_rng(0).normal(size=(256, 2)) * 0.5 + np.array([1.0, -1.0]), jnp.float32
)


def quad(p, x):
    return 0.5 * jnp.exp(p["log_prec"]) * jnp.sum((x - p["m"]) ** 2)


QUAD0 = {"m": jnp.zeros(2), "log_prec": jnp.zeros(())}

# A persistent-CD loss whose extra state is a replay buffer (the most state to restore).
ENERGY_FN, MLP_PARAMS = umrf.models.nnx_energy(
    umrf.models.MLPEnergy(2, (16,), confinement=0.5, rngs=nnx.Rngs(0))
)
ALG = umrf.samplers.mala(ENERGY_FN, step_size=0.05)
BUFFER = umrf.samplers.ReplayBuffer(64, umrf.samplers.uniform_init((2,), low=-2.0, high=2.0))


def replay_cd_loss(key, params, batch, bstate):
    x_model, bstate, _ = umrf.samplers.replay_negatives(
        ALG, BUFFER, key, params, bstate, batch_size=batch.shape[0], num_steps=5
    )
    loss = umrf.losses.contrastive_divergence(ENERGY_FN, params, batch, x_model, alpha=0.1)
    return loss, bstate


class InterruptError(Exception):
    pass


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
    key = jax.random.key(42)
    kwargs = dict(
        num_steps=12,
        batch_size=16,
        progress=False,
    )
    opt = optax.adam(1e-2)
    bstate = BUFFER.init(jax.random.key(1))
    full, _ = training.fit(replay_cd_loss, opt, key, MLP_PARAMS, DATA, extra=bstate, **kwargs)

    def crash(state):
        if int(state.step) == 6:
            raise InterruptError
        return {}

    with pytest.raises(InterruptError):
        training.fit(
            replay_cd_loss,
            opt,
            key,
            MLP_PARAMS,
            DATA,
            extra=bstate,
            eval_fn=crash,
            eval_every=1,
            checkpoint_dir=tmp_path,
            checkpoint_every=4,
            **kwargs,
        )
    assert training.latest_checkpoint(tmp_path).name == "ckpt_000000004"
    resumed, hist = training.fit(
        replay_cd_loss,
        opt,
        key,
        MLP_PARAMS,
        DATA,
        extra=bstate,
        checkpoint_dir=tmp_path,
        checkpoint_every=4,
        **kwargs,
    )
    assert hist.resumed_from == 4 and hist.steps[0] == 5
    assert int(resumed.step) == 12
    leaves_equal(resumed, full)  # params, Adam moments, key, replay buffer: identical
    # the run really changed the state
    assert not np.array_equal(np.asarray(resumed.extra.samples), np.asarray(bstate.samples))


def test_checkpoint_roundtrip_without_pickle(tmp_path):
    tree = {
        "w": jnp.arange(6.0).reshape(2, 3),
        "h": jnp.ones(3, jnp.bfloat16) * 1.5,
        "i": jnp.array([1, 2], jnp.int32),
        "key": jax.random.key(3),
        "raw": jax.random.PRNGKey(4),
        "none": None,
    }
    path = training.save_checkpoint(tmp_path / "c", tree)
    meta = json.loads((path / "manifest.json").read_text())
    assert meta["format"] == "umrf-checkpoint-v2" and len(meta["leaves"]) == 5
    with np.load(path / "process_00000.npz", allow_pickle=False) as f:  # no object arrays
        assert all(f[name].dtype != object for name in f.files)
    template = jax.tree_util.tree_map(jnp.zeros_like, tree)
    template["key"] = jax.random.key(0)
    back = training.load_checkpoint(path, template)
    leaves_equal(back, tree)
    assert back["h"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        jax.random.normal(back["key"], (3,)), jax.random.normal(tree["key"], (3,))
    )
    with pytest.raises(ValueError, match="structure"):
        training.load_checkpoint(path, {"w": tree["w"]})
    wrong = dict(template, w=jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        training.load_checkpoint(path, wrong)


def test_nonfinite_loss_stops_and_keeps_last_good_state():
    def loss_fn(key, p, batch, extra):
        return (jnp.sqrt(p), extra)

    state, hist = training.fit(
        loss_fn,
        optax.sgd(1.0),
        jax.random.key(0),
        jnp.float32(1.0),
        DATA,
        num_steps=10,
        batch_size=4,
        progress=False,
    )
    # p: 1 -> 0.5 -> 0.5 - 0.707 < 0 -> sqrt is NaN at step 3
    assert hist.diverged_at == 3
    assert np.isnan(hist.losses[-1])
    assert int(state.step) == 2 and np.isfinite(float(state.params))


def dsm_loss(key, p, batch, extra):
    return umrf.losses.denoising_score_matching(umrf.score(quad), key, p, batch, sigma=0.5), extra


def test_data_parallel_mesh_matches_single_device_and_learns():
    devices = np.array(jax.devices()[:4])
    mesh = Mesh(devices, ("batch",))
    opt = optax.adam(1e-1)
    key = jax.random.key(0)
    kw = dict(num_steps=200, batch_size=64, progress=False)
    single, hist = training.fit(dsm_loss, opt, key, QUAD0, DATA, **kw)
    sharded, _ = training.fit(dsm_loss, opt, key, QUAD0, DATA, mesh=mesh, **kw)
    for a, b in zip(
        jax.tree_util.tree_leaves(single.params),
        jax.tree_util.tree_leaves(sharded.params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert sharded.params["m"].sharding.is_fully_replicated
    # DSM moves the quadratic energy to the data mean, its variance to 0.25 + σ² = 0.5
    np.testing.assert_allclose(single.params["m"], DATA.mean(0), atol=0.15)
    np.testing.assert_allclose(np.exp(-float(single.params["log_prec"])), 0.5, atol=0.1)
    assert hist.losses[-1] < hist.losses[0]
    with pytest.raises(ValueError, match="multiple"):
        training.fit(
            dsm_loss,
            opt,
            jax.random.key(0),
            QUAD0,
            DATA,
            num_steps=1,
            batch_size=6,
            mesh=mesh,
            progress=False,
        )


def test_periodic_eval_and_no_recompile_on_new_params():
    counted = chex.assert_max_traces(n=1)(dsm_loss)

    def evals(s):
        return {"m0": s.params["m"][0]}

    key = jax.random.key(1)
    kw = dict(num_steps=6, batch_size=8, progress=False)
    opt = optax.sgd(0.1)  # the loss and optimiser objects key the compiled step
    _, h1 = training.fit(counted, opt, key, QUAD0, DATA, eval_fn=evals, eval_every=2, **kw)
    other = jax.tree_util.tree_map(lambda a: a + 1.0, QUAD0)
    training.fit(counted, opt, key, other, DATA, **kw)  # new params: same program
    assert [s for s, _ in h1.evals] == [2, 4, 6]


def test_compiler_options_auto_none_and_explicit_agree():
    """ "auto" is umrf's CPU dot choice; None and an explicit dict compile the same step."""
    if jax.default_backend() == "cpu":
        assert training._step.resolve_compiler_options("auto") == tuple(
            training.CPU_COMPILER_OPTIONS.items()
        )
    opt = optax.adam(1e-2)
    kw = dict(num_steps=5, batch_size=32, progress=False)
    runs = [
        training.fit(
            replay_cd_loss,
            opt,
            jax.random.key(3),
            MLP_PARAMS,
            DATA,
            extra=BUFFER.init(jax.random.key(4)),
            compiler_options=options,
            **kw,
        )[0]
        for options in ("auto", None, dict(training.CPU_COMPILER_OPTIONS))
    ]
    leaves_equal(runs[0].params, runs[2].params)  # "auto" on CPU is that dict
    for a, b in zip(
        jax.tree_util.tree_leaves(runs[0].params),
        jax.tree_util.tree_leaves(runs[1].params),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # different dot kernels


def test_bad_inputs():
    key = jax.random.key(0)
    kw = dict(progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        training.fit(dsm_loss, optax.sgd(0.1), key, QUAD0, DATA, num_steps=1, batch_size=0, **kw)
    with pytest.raises(TypeError, match="optimizer"):
        training.fit(dsm_loss, "adam", key, QUAD0, DATA, num_steps=1, batch_size=2, **kw)
    for bad, err in (("fast", ValueError), (["x"], TypeError)):
        with pytest.raises(err, match="compiler_options"):
            training.fit(
                dsm_loss,
                optax.sgd(0.1),
                key,
                QUAD0,
                DATA,
                num_steps=1,
                batch_size=2,
                compiler_options=bad,
                **kw,
            )
    with pytest.raises(ValueError, match="data"):
        training.fit(
            dsm_loss,
            optax.sgd(0.1),
            key,
            QUAD0,
            DATA.at[0, 0].set(jnp.nan),
            num_steps=1,
            batch_size=2,
            **kw,
        )
