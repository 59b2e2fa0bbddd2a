"""Kingma & Welling (2014), "Auto-Encoding Variational Bayes", Figure 2: the lower bound per
datapoint vs training examples seen (log axis), train and test, one curve per latent size, on
MNIST (latents 3, 5, 10, 20, 200) and Frey Face (2, 5, 10, 20).

  TFDS_DATA_DIR=../shared/tensorflow_datasets AUTOENCODERS_DATA_DIR=../shared/datasets \
      python -m experiments.reproduce kingma_welling_fig2

The runs are configs/vae.py's sweeps `kingma_welling_fig2` and `kingma_welling_frey` (one hidden
layer of 500 / 200 tanh units, Adagrad 0.02, batch 100, weight decay as a N(0, I) prior). The
paper prints curves only: expect the figure's shape — bounds rising with examples seen, larger
latents reaching higher bounds on MNIST, with little overfitting (train and test close) — not
numbers to match. The page lists each run's test bound at 10^6 and 10^7 examples seen, Frey
Face's also at 10^8 (the paper's whole x-range), and the train bound where each panel ends. The cpu
budget took 9.6 h of training summed over the nine runs, about 5 h with --workers=2 on the 2-core
Intel Xeon that wrote the page (Frey Face's 10^8 examples are most of it).
"""

from autoencoders import reproduce, results, sweeps
from configs import vae

PAPER = 'Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (Figure 2)'
UNIT = (
    "nats per image: test −ELBO at the first evaluation with at least that many training "
    "examples seen (the figure plots its negative)"
)
TRAIN_UNIT = "nats per image: train −ELBO, the mean over that epoch's minibatches"
MNIST_EPOCHS = {"tiny": 2, "cpu": 167, "paper": 1667}  # 60,000 an epoch: 1.002·10^7, 1.0002·10^8
# 15 minibatches of 100 of the 1,572 images an epoch (the remainder is dropped): 1,500 examples.
FREY_EPOCHS = {"tiny": 2, "cpu": 66_700, "paper": 66_700}  # 1.0005·10^8 examples
# The x-points the page reads (the first evaluation at or past each): decades of the log axis.
DECADES = {"tiny": (2, 3), "cpu": (6, 7), "paper": (6, 7, 8)}
FREY_DECADES = {**DECADES, "cpu": (6, 7, 8)}
BUDGET = {
    "tiny": "2 epochs of each run on the embedded 8x8 digits (both panels), tiny networks.",
    "cpu": (
        "MNIST 167 epochs (10^7 training examples; the paper's x-axis reaches 10^8), Frey Face "
        "66,700 epochs (10^8 examples, the paper's whole x-range)."
    ),
    "paper": "MNIST 1,667 epochs and Frey Face 66,700 epochs: 10^8 training examples each.",
}


def _part(name: str, sweep: str, epochs: int, every: int, budget: str) -> reproduce.Part:
    declared = vae.get_sweep(sweep)
    fixed = {
        **declared.fixed,
        "train.num_epochs": epochs,
        "train.eval_every": every,
        "checkpoint.every_epochs": every * 4,
    }
    if budget == "tiny":
        fixed.update({"arg:data": "digits", "network.hidden": (16,), "train.eval_every": 1})
        fixed.update({"checkpoint.every_epochs": 1})
    return reproduce.Part(name, "configs/vae.py", sweeps.declare(declared.runs, fixed))


def figure(ctx: reproduce.Context, path: str) -> str:
    """Both panels in the paper's layout: the bound (−neg_elbo) vs examples seen, train dashed."""
    panels = []
    for part, title in (("mnist", "MNIST"), ("frey_face", "Frey Face")):
        lines = {}
        for run in ctx.plans[part].runs:
            result = results.load_result(run.id, run.workdir, run.overrides)
            if result is None:
                continue
            curves = {}
            for split in ("test", "train"):
                xs, ys = results.curve(result, split, "neg_elbo")
                curves[split] = (xs, [-y for y in ys])
            lines[f"N_z = {run.overrides['model.latent_dim']}"] = curves
        panels.append((f"{title} ({ctx.budget} budget)", lines))
    return reproduce.curves_figure(
        panels, "training examples seen", "lower bound per datapoint (nats)", path
    )


def get_reproduction(budget: str) -> reproduce.Reproduction:
    parts = (
        _part("mnist", "kingma_welling_fig2", MNIST_EPOCHS[budget], 1, budget),
        _part("frey_face", "kingma_welling_frey", FREY_EPOCHS[budget], 100, budget),
    )
    panels = (
        ("mnist", "MNIST", (3, 5, 10, 20, 200), DECADES[budget]),
        ("frey_face", "Frey Face", (2, 5, 10, 20), FREY_DECADES[budget]),
    )
    # Each panel's test bound at its decades, then its train bound where it ends: the gap between
    # the two is the overfitting.
    rows = tuple(
        reproduce.Row(
            f"{title}, latent {latent}, 10^{decade} examples{suffix}",
            part,
            f"{split}/neg_elbo",
            unit,
            None,
            {"model.latent_dim": latent},
            10**decade,
        )  # fmt: skip
        for part, title, latents, decades in panels
        for split, suffix, unit, decade in (
            *(("test", "", UNIT, decade) for decade in decades),
            ("train", ", train", TRAIN_UNIT, decades[-1]),
        )
        for latent in latents
    )
    return reproduce.Reproduction(
        name="kingma_welling_fig2",
        title="VAE lower bound vs training examples (Figure 2)",
        paper=PAPER,
        budget=BUDGET[budget],
        parts=parts,
        rows=rows,
        ledger=tuple(
            f"{title}, latent 20, 10^{decades[-1]} examples" for _, title, _, decades in panels
        ),
        notes="""
What the paper's figure shows, to read beside ours: for every latent size the AEVB bound (ours)
rises with the examples seen over the whole x-range, on train and test alike; on MNIST a larger
N_z reaches a higher bound and N_z = 200 does not overfit ("more latent variables does not result
in more overfitting, which is explained by the regularizing effect of the lower bound", its
caption). Its panels also plot the wake-sleep algorithm, which is not reproduced here.

Units: the bound is in nats per image, one posterior sample, on MNIST **dynamically binarized**
(Bernoulli likelihood; the paper does not say how it binarized) and on Frey Face grey levels
**dequantized** (Gaussian with a learned σ: a density on [0, 1]^560, so its bound can be positive
and is not comparable with MNIST's). Train curves are the means over each epoch's minibatches
(dashed), test curves the evaluation of the test split after each evaluated epoch (solid). The
paper's decoder mean for Frey Face is a sigmoid; ours is unconstrained. The paper prints no
table: the rows are our test bounds at the decades of the figure's x-axis (the first evaluation at
or past each), to compare latent sizes and budgets, not numbers read off the paper's curves.

What ours shows: on MNIST the paper's order holds at 10^7 examples — a larger N_z reaches a higher
bound, with N_z = 200 level with N_z = 20 rather than above it — and the train rows stay within
about a nat of the test rows: no overfitting, as in the paper. On Frey Face the bounds order by
N_z too (2 < 5 < 10 ≈ 20), but after a few 10^7 examples the test bound stops rising while the
train bound keeps climbing: the 1,572 training faces are overfit, most at N_z = 2, whose test
bound at 10^8 is below its value at 10^7. The train–test gap at 10^8 is of the same order for
every N_z, in line with the caption's point that more latents do not bring more overfitting. Our
unconstrained decoder mean (the paper's is a sigmoid) is one candidate cause of the late overfit.

Each row is one run (one seed), so no standard errors, and long runs amplify small numerical
differences: the same runs at commit 5b0d2a8 on an AMD EPYC gave MNIST bounds within 0.2 nats of
these, and Frey Face bounds up to about 30 nats apart at 10^7 and up to about 90 at 10^6, where
its curves climb steeply (a different CPU and an earlier commit; which of the two moved the
numbers was not measured).
""",
        figure=figure,
    )
