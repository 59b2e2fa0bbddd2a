"""One hidden layer of 1,000 sigmoid units learned by a plain, a denoising and a contractive
autoencoder, then fine-tuned as an MNIST classifier (Rifai, Vincent, Muller, Glorot & Bengio 2011,
"Contractive auto-encoders: explicit invariance during feature extraction", Table 2; Vincent et
al. 2010).

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.reproduce dae_cae_features

The papers' architecture: h(x) = sigmoid(W x + b), 1,000 units, a tied decoder sigmoid(Wᵀh + c)
and cross-entropy on grey levels (configs/ae.py, dae.py, cae.py with no hidden layer, a 1,000-unit
sigmoid code and `network.tied`). Each network initialises a 784-1000-10 classifier that is
fine-tuned on 50,000 training images with early stopping on the other 10,000. Expect errors near
the papers' (CAE 1.14 %, DAE 1.18-1.57 %, AE 1.78 %) at the paper budget, and the same classifier
from random weights as the baseline pretraining should beat.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoencoders import baselines, density, evaluation, quantities, reproduce, sweeps
from autoencoders.quantities import subset_indices

PAPER = (
    'Rifai, Vincent, Muller, Glorot & Bengio 2011, "Contractive auto-encoders: explicit '
    'invariance during feature extraction"'
)
ERROR_UNIT = (
    "% test error of the 784-1000-10 classifier initialised by the autoencoder and fine-tuned "
    "(epoch chosen on 10,000 held-out training images)"
)
PROBE_UNIT = "% test error of a logistic-regression probe on the frozen 1,000 sigmoid units"
SCRATCH_UNIT = "% test error of the same classifier and fine-tuning from random weights"
HELD_OUT_UNIT = (
    "% error of the fine-tuned classifier on the 10,000 held-out training images (the epoch kept)"
)
EPOCHS = {"tiny": 1, "cpu": 60, "paper": 100}  # unsupervised pretraining
FINETUNE_EPOCHS = {"tiny": 2, "cpu": 30, "paper": 100}
VALIDATION = {"tiny": 100, "cpu": 10_000, "paper": 10_000}  # held out of the training images
PROBE = {"tiny": (300, 300), "cpu": (10_000, 10_000), "paper": (50_000, 10_000)}  # train, test
FINETUNE_BATCH, FINETUNE_LEARNING_RATE = 100, 1e-3  # Adam
BUDGET = {
    "tiny": "1 epoch on the embedded 8x8 digits, 32 units; fine-tuned 2 epochs.",
    "cpu": "60 epochs of pretraining each, 30 of fine-tuning; probe on 10,000 training images.",
    "paper": "100 epochs of pretraining each, 100 of fine-tuning; probe on 50,000.",
}
PAPER_ERRORS = {"ae": 1.78, "dae": 1.18, "cae": 1.14}


# ---------------------------------------------------------------------------------------------
# The classifier the papers fine-tune: sigmoid(x W + b) V + c, its first layer the encoder's
# ---------------------------------------------------------------------------------------------


def classifier_logits(params: dict, x: jax.Array) -> jax.Array:
    hidden = jax.nn.sigmoid(x.reshape(x.shape[0], -1) @ params["w"] + params["b"])
    return hidden @ params["v"] + params["c"]


def _cross_entropy(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(classifier_logits(params, x), y).mean()


# Adam: from random weights it reached 2.1 % test error in 10 epochs, where SGD with momentum 0.9
# reached 4.1 % at step 0.05 and did worse at 0.2 and 0.5 (one run each).
OPTIMIZER = optax.adam(FINETUNE_LEARNING_RATE)


@jax.jit
def _epoch(params: dict, opt_state, x: jax.Array, y: jax.Array, key: jax.Array):
    """One pass over (x, y) in shuffled minibatches of FINETUNE_BATCH (the remainder dropped)."""
    steps = len(x) // FINETUNE_BATCH
    order = jax.random.permutation(key, len(x))[: steps * FINETUNE_BATCH]
    xs = x[order].reshape(steps, FINETUNE_BATCH, *x.shape[1:])
    ys = y[order].reshape(steps, FINETUNE_BATCH)

    def step(carry, batch):
        params, opt_state = carry
        grads = jax.grad(_cross_entropy)(params, *batch)
        updates, opt_state = OPTIMIZER.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(step, (params, opt_state), (xs, ys))[0]


@functools.partial(jax.jit, static_argnames="batch")
def _errors(params: dict, x: jax.Array, y: jax.Array, batch: int = 1000) -> jax.Array:
    """How many of (x, y) the classifier gets wrong (x in blocks of `batch`)."""
    pad = -len(x) % batch
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(-1, batch, *x.shape[1:])
    ys = jnp.pad(y, (0, pad), constant_values=-1).reshape(-1, batch)
    wrong = jax.lax.map(lambda b: classifier_logits(params, b[0]).argmax(-1) != b[1], (xs, ys))
    return jnp.sum(wrong & (ys >= 0))


def finetune(
    w: jax.Array, b: jax.Array, data: dict[str, tuple], epochs: int, seed: int = 0
) -> dict[str, float]:
    """Fine-tunes sigmoid(x w + b) V + c (V, c zero) on data['train'] with Adam and keeps the
    epoch with the fewest errors on data['validation']; {'test_error', 'validation_error' (%),
    'epoch'} of that epoch."""
    params = {"w": w, "b": b, "v": jnp.zeros((w.shape[1], 10)), "c": jnp.zeros(10)}
    opt_state = OPTIMIZER.init(params)
    x, y = data["train"]
    best = (np.inf, 0, params)
    for epoch, key in enumerate(jax.random.split(jax.random.key(seed), epochs), start=1):
        params, opt_state = _epoch(params, opt_state, x, y, key)
        wrong = int(_errors(params, *data["validation"]))
        if wrong < best[0]:
            best = (wrong, epoch, params)
    wrong, epoch, params = best
    return {
        "test_error": 100 * int(_errors(params, *data["test"])) / len(data["test"][1]),
        "validation_error": 100 * wrong / len(data["validation"][1]),
        "epoch": epoch,
    }


def _error(percent: float, examples: int, unit: str) -> dict:
    """A test error in % with its binomial standard error."""
    p = percent / 100
    return quantities.quantity(percent, unit, stderr=100 * float(np.sqrt(p * (1 - p) / examples)))


def measure(run: evaluation.Run, budget: str) -> dict:
    """The fine-tuned classifier's test error, the frozen features' probe error, and (for the
    plain AE's run, once) the classifier from random weights."""
    held_out = subset_indices(len(run.y_train), VALIDATION[budget], 0)
    train = np.setdiff1d(np.arange(len(run.y_train)), held_out)
    data = {
        "train": (run.x_train[train], run.y_train[train]),
        "validation": (run.x_train[held_out], run.y_train[held_out]),
        "test": (run.x_test, run.y_test),
    }
    dense = run.params["encoder"]["params"]["out"]
    tuned = finetune(dense["kernel"], dense["bias"], data, FINETUNE_EPOCHS[budget])
    n_test = len(run.y_test)
    out = {
        "finetuned_error": _error(tuned["test_error"], n_test, ERROR_UNIT),
        "finetuned_validation_error": _error(
            tuned["validation_error"], VALIDATION[budget], HELD_OUT_UNIT
        ),
        "finetuned_epoch": quantities.quantity(tuned["epoch"], "fine-tuning epoch kept"),
    }
    n_probe_train, n_probe_test = PROBE[budget]
    probe_train, probe_test = (
        train[subset_indices(len(train), n_probe_train, 0)],
        subset_indices(n_test, n_probe_test, 1),
    )
    accuracy = baselines.probe_accuracies(
        density.encode(run.model, run.params, run.x_train[probe_train], run.y_train[probe_train]),
        run.y_train[probe_train],
        density.encode(run.model, run.params, run.x_test[probe_test], run.y_test[probe_test]),
        run.y_test[probe_test],
    )["linear_probe"]["value"]
    out["probe_error"] = _error(100 * (1 - accuracy), len(probe_test), PROBE_UNIT)
    if run.config.model.family == "ae":
        shape = dense["kernel"].shape  # Glorot-uniform, as the encoder's own initialisation
        w = jax.nn.initializers.glorot_uniform()(jax.random.key(1), shape)
        scratch = finetune(w, jnp.zeros(shape[1]), data, FINETUNE_EPOCHS[budget])
        out["scratch_error"] = _error(scratch["test_error"], n_test, SCRATCH_UNIT)
    return out


def get_reproduction(budget: str) -> reproduce.Reproduction:
    fixed = {
        "arg:likelihood": "bernoulli",
        "data.binarization": "none",  # cross-entropy on grey levels, as the papers
        "network.hidden": (),
        "network.tied": True,
        "model.latent_dim": 1000,
        "model.code_activation": "sigmoid",
        "train.num_epochs": EPOCHS[budget],
        "train.eval_every": 5 if budget != "tiny" else 1,
        "checkpoint.every_epochs": 5 if budget != "tiny" else 1,
    }
    if budget == "tiny":
        fixed.update({"arg:data": "digits", "model.latent_dim": 32})
    runs = sweeps.declare(sweeps.point({}), fixed)
    # The papers' closed form of ‖J‖²_F for one sigmoid layer (exact; autodiff would need 784
    # JVPs a step). λ was chosen on the held-out images (see the notes).
    cae_fixed = {**fixed, "model.jacobian": "closed_form", "model.contractive_weight": 0.3}
    cae_runs = sweeps.declare(sweeps.point({}), cae_fixed)
    parts = tuple(
        reproduce.Part(name, f"configs/{name}.py", cae_runs if name == "cae" else runs)
        for name in PAPER_ERRORS
    )
    rows = (
        *(
            reproduce.Row(name.upper(), name, "measure/finetuned_error", ERROR_UNIT, paper)
            for name, paper in PAPER_ERRORS.items()
        ),
        reproduce.Row("no pretraining", "ae", "measure/scratch_error", SCRATCH_UNIT, None),
        *(
            reproduce.Row(f"{name.upper()}, {what}", name, f"measure/{key}", unit, None)
            for what, key, unit in (
                ("held out", "finetuned_validation_error", HELD_OUT_UNIT),
                ("probe", "probe_error", PROBE_UNIT),
            )
            for name in PAPER_ERRORS
        ),
    )

    def finetuned_and_probed(run: evaluation.Run) -> dict:
        return measure(run, budget)

    return reproduce.Reproduction(
        name="dae_cae_features",
        title="AE vs DAE vs CAE features: one hidden layer of 1,000 units on MNIST",
        paper=PAPER,
        budget=BUDGET[budget],
        parts=parts,
        rows=rows,
        ledger=("AE", "DAE", "CAE"),
        measure=finetuned_and_probed,
        notes=f"""
Protocol. Each autoencoder is the papers' one-layer network: h(x) = sigmoid(W x + b) with 1,000
units, a tied decoder sigmoid(Wᵀ h + c), and binary cross-entropy on MNIST grey levels (not a
likelihood: the pixels are not binary; nats per image), Adam 1e-3, batch 128. The DAE zeroes 25 %
of the input pixels afresh each minibatch (Vincent et al.'s masking noise); the CAE adds
λ‖∂h/∂x‖²_F with λ = 0.3, computed exactly by the papers' closed form for one sigmoid layer,
Σ_j (h_j (1 − h_j))² ‖W_j‖² (`config.model.jacobian=closed_form`). Classifier: a 784-1000-10
network whose first layer is W, b, with a zero softmax layer, fine-tuned with Adam (step
{FINETUNE_LEARNING_RATE}, batch {FINETUNE_BATCH}; the papers used SGD) on the 50,000 training
images outside a fixed held-out 10,000; the epoch with the fewest held-out errors is kept and its
test error reported (binomial standard error). "No pretraining" is the same fine-tuning from
Glorot-uniform weights. The probe rows are a logistic regression on the frozen, standardised
1,000 units.

Choices. The papers chose λ, the noise level and the learning rates on validation error; here λ and
the noise level were chosen on the fine-tuned classifier's held-out error (the 10,000 held-out
training images, not the test set). λ ∈ {{0.3, 1, 3}}: three vmapped members of one 60-epoch run
(the cae run's command with another `--workdir` and `--config.vmap="{{'contractive_weight': (0.3,
1.0, 3.0)}}"`), each measured by `python -m experiments.reproduce dae_cae_features
--measure=WORKDIR/members/contractive_weight=λ`: held-out 1.47, 1.57 and 1.52 % (test 1.55, 1.53 and
1.62 %), all within one standard error of each other; λ = 0.3 has the fewest held-out errors (this
page's own λ = 0.3 run, trained alone, gave 1.54 / 1.46 % on the same CPU: a vmapped member equals a
separate run up to float rounding). The masking probability, at 20 epochs of pretraining: 0.25
(1.58 %) over 0.4 (1.61 %) and 0.55 (1.78 %; test errors 1.60 and 1.65 %; the dae run's command with
`--config.train.num_epochs=20` and `--config.vmap="{{'noise_level': (0.4, 0.55)}}"`, two vmapped
members). The fine-tuning step is fixed: Adam at 3e-4 was worse than at 1e-3 (test errors: AE
2.00 %, DAE 1.76 %). Fine-tuning longer does not help: the λ = 0.3 and 1 members fine-tuned for 100
epochs (`--budget=paper --measure=...`, the paper budget's fine-tuning) kept epochs 36 and 60, at
test errors 1.58 and 1.54 % (held-out 1.44 and 1.50 %). Nor does pretraining with plain SGD, as
the papers did (step 0.1, batch 20, 30 epochs: each run's command with another `--workdir` and
`--config.optimizer.name=sgd --config.optimizer.learning_rate=0.1 --config.train.batch_size=20
--config.train.num_epochs=30`, measured as above): held-out / test errors AE 1.74 / 1.66 %, DAE
1.51 / 1.52 %, CAE 1.58 / 1.63 % (probes 5.40, 3.67 and 3.50 %). The three stay within about
two standard errors of each other and of Adam's features, still above the papers' 1.14-1.18 %.

Earlier versions of this page (in the git history). The CAE's penalty was once estimated with 8
Gaussian projections per image and step at λ = 1 (then chosen over 0.1 and 3 the same way, at 20
epochs): test 1.46 %, held-out 1.57 %; the exact penalty is no better within the standard
errors. With 20 epochs of pretraining instead of 60 the errors were, held-out / test: DAE
1.58 / 1.69 %, CAE (projections) 1.53 / 1.53 %, AE test 1.77 %: longer pretraining alone does not
close the gap to the papers.

Across machines: this page was written on a 2-core AMD EPYC without AVX-512 (2026-12-03), its
command run with no runs present. The two versions before it, written the same way on a 2-core AMD
EPYC whose matrix products ran about 2.5× faster (2026-12-02) and on a 2-core Intel Xeon, with the
same package versions, agreed on every fine-tuned, held-out and no-pretraining error (the AE's
probe: 5.91 and 5.95 %). On this CPU four rows moved, each by less than its standard error: CAE
1.55 % (1.54 there), CAE held out 1.44 % (1.46), no pretraining 1.88 % (1.79), AE probe 5.89 %
(5.91). Presumably its kernels sum float32 products in another order, so training rounds differently
and a few of the 10,000 test images change class. Run again on 2026-12-04 by the same command with
no runs present, on the same CPU model: every fine-tuned, held-out, no-pretraining and probe row
was the same to the printed digit.
""",
        figure=reproduce.paper_vs_ours,
    )
