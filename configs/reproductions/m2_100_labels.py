"""Kingma, Rezende, Mohamed & Welling (2014), "Semi-supervised learning with deep generative
models": M2 with 100 labelled MNIST images (10 a class), test classification error.

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.reproduce m2_100_labels

configs/m2.py's setup (50 latents, MLPs 500-500 softplus, α = 0.1·N, Adam 3e-4, 100 unlabelled and
100 labelled images a step, dynamically binarized MNIST). Expect the test error (% of the 10,000
test digits misclassified by argmax q(y|x)) to fall with training, toward the paper's 11.97 %;
the page shows the error curve over epochs and the number reached at this budget.
"""

from autoencoders import evaluation, reproduce, results, sweeps

PAPER = (
    'Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning with deep generative '
    'models" (Table 1, M2)'
)
UNIT = "% of the test images misclassified by argmax q(y|x)"
EPOCHS = {"tiny": 1, "cpu": 80, "paper": 3000}
BUDGET = {
    "tiny": "1 epoch on the embedded 8x8 digits with 100 labels.",
    "cpu": "80 epochs.",
    "paper": "3,000 epochs, the paper's longest training.",
}


def figure(ctx: reproduce.Context, path: str) -> str:
    run = ctx.run("m2")
    result = results.load_result(run.id, run.workdir, run.overrides)
    lines = {}
    if result is not None:
        for split in ("test", "train"):
            rows = [r for r in result.rows if r["split"] == split and "class_error" in r]
            lines.setdefault("M2, 100 labels", {})[split] = (
                [r["epoch"] for r in rows],
                [r["class_error"] for r in rows],
            )
    return reproduce.curves_figure(
        [(f"M2 test error over training ({ctx.budget} budget)", lines)],
        "epoch",
        UNIT,
        path,
        log_x=False,
    )


def get_reproduction(budget: str) -> reproduce.Reproduction:
    every = 1 if budget == "tiny" else (2 if budget == "cpu" else 25)
    fixed = {
        "arg:labels": 100,
        "train.num_epochs": EPOCHS[budget],
        "train.eval_every": every,
        "checkpoint.every_epochs": every,
    }
    if budget == "tiny":
        fixed.update({"arg:data": "digits", "network.hidden": (16,), "arg:latent": 4})
    # The error with its standard error over test images comes from evaluate's per-image terms;
    # its importance-sampled bound (k = 10 on 100 images) is a by-product, not reported.
    options = evaluation.Options(
        parts=("density",), num_samples=10, report_ks=(1,), density_examples=100
    )
    return reproduce.Reproduction(
        name="m2_100_labels",
        title="M2, MNIST with 100 labels: test error",
        paper=PAPER,
        budget=BUDGET[budget],
        parts=(
            reproduce.Part("m2", "configs/m2.py", sweeps.declare(sweeps.point({}), fixed), options),
        ),
        rows=(
            reproduce.Row(
                "M2 test error (evaluate)", "m2", "eval/density/class_error", UNIT, 11.97
            ),
            reproduce.Row(
                "M2 test error (training's last evaluation)", "m2", "test/class_error", UNIT, 11.97
            ),
        ),
        ledger=("M2 test error (evaluate)",),
        notes="""
The labelled subset is balanced (10 images a class), chosen by `config.data.split_seed`; the rest
of the training images are used without labels. MNIST is **dynamically binarized**. The error is
measured on all 10,000 test images; its standard error over images is the binomial one. The
figure is the test (solid) and training-minibatch (dashed) error after each evaluated epoch,
from metrics.jsonl. The paper reports the mean of several runs; this is one seed.
""",
        figure=figure,
    )
