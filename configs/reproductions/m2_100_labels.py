"""Kingma, Rezende, Mohamed & Welling (2014), "Semi-supervised learning with deep generative
models": M2 with 100 labelled MNIST images (10 a class), test classification error.

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.reproduce m2_100_labels

configs/m2.py's setup (50 latents, MLPs 500-500 softplus, Adam 3e-4, 100 unlabelled and 100
labelled images a step, dynamically binarized MNIST) with the classifier's weight α = 50·N; beside
it, a shorter run with the paper's α = 0.1·N. Expect the test error (% of the 10,000 test digits
misclassified by argmax q(y|x)) to fall with training under α = 50·N and to stay near 50 % under
0.1·N. Measured at the cpu budget (1.4 h on 2 cores): 8.17 ± 0.27 % after 120 epochs, below the
paper's 11.97 % from about epoch 80; 49.2 ± 0.5 % after 20 epochs with the paper's α.
"""

from autoencoders import evaluation, reproduce, results, sweeps

PAPER = (
    'Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning with deep generative '
    'models" (Table 1, M2)'
)
UNIT = "% of the test images misclassified by argmax q(y|x)"
EPOCHS = {"tiny": 1, "cpu": 120, "paper": 3000}
PAPER_ALPHA_EPOCHS = {"tiny": 1, "cpu": 20, "paper": 100}  # enough to see it fail
BUDGET = {
    "tiny": "1 epoch on the embedded 8x8 digits with 100 labels (each α).",
    "cpu": "120 epochs (α = 50·N); 20 epochs with the paper's α = 0.1·N.",
    "paper": "3,000 epochs, the paper's longest training (α = 50·N); 100 with α = 0.1·N.",
}
PARTS = {"m2": "M2, α = 50·N", "m2_paper_alpha": "M2, the paper's α = 0.1·N"}


def figure(ctx: reproduce.Context, path: str) -> str:
    lines = {}
    for part, label in PARTS.items():
        run = ctx.run(part)
        result = results.load_result(run.id, run.workdir, run.overrides)
        if result is None:
            continue
        # Training rows hold the error on the labelled minibatches only (100 images learnt by
        # heart): the test error alone is drawn.
        rows = [r for r in result.rows if r["split"] == "test" and "class_error" in r]
        lines[label] = {"test": ([r["epoch"] for r in rows], [r["class_error"] for r in rows])}
    return reproduce.curves_figure(
        [(f"M2 with 100 labels: error over training ({ctx.budget} budget)", lines)],
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
    paper_alpha = {
        **fixed,
        "model.alpha_over_n": 0.1,
        "train.num_epochs": PAPER_ALPHA_EPOCHS[budget],
    }
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
            reproduce.Part(
                "m2_paper_alpha",
                "configs/m2.py",
                sweeps.declare(sweeps.point({}), paper_alpha),
                options,
            ),
        ),
        rows=(
            reproduce.Row(
                "M2 test error (evaluate)", "m2", "eval/density/class_error", UNIT, 11.97
            ),
            reproduce.Row(
                "M2 test error (training's last evaluation)", "m2", "test/class_error", UNIT, 11.97
            ),
            reproduce.Row(
                "M2 with the paper's α = 0.1·N, test error (evaluate)",
                "m2_paper_alpha",
                "eval/density/class_error",
                UNIT,
            ),
            reproduce.Row(
                "M2 with the paper's α = 0.1·N, test KL(q(y|x) || uniform)",
                "m2_paper_alpha",
                "test/kl_y",
                "nats per image",
            ),
            reproduce.Row(
                "M2 with α = 50·N, test KL(q(y|x) || uniform)",
                "m2",
                "test/kl_y",
                "nats per image",
            ),
        ),
        ledger=("M2 test error (evaluate)",),
        notes="""
**The classifier's weight departs from the paper.** The paper adds α·E_labelled[−log q(y|x)] to the
bound summed over the N training images, with α = 0.1·N: per image (the objective here is a
per-image mean) that is `config.model.alpha_over_n` = 0.1, as in the authors' released code (which
runs M2 on M1's features, not on pixels). On pixels with 100 labels, that weight loses to the
unlabelled bound's entropy term: q(y|x) drifts toward uniform (its KL to uniform, in the rows
above, is near 0, where log 10 = 2.30 nats is a certain label) and the error does not fall. The
main run uses α = 50·N (`configs/m2.py`'s default, about 0.1·N_unlabelled/N_labelled), the best of
{0.1, 5, 50}·N in 10-epoch trials.

The labelled subset is balanced (10 images a class), chosen by `config.data.split_seed`; the rest
of the training images are used without labels. MNIST is **dynamically binarized**. The error is
measured on all 10,000 test images; its standard error over images is the binomial one. The
figure is the test error after each evaluated epoch of both runs, from metrics.jsonl. The paper
reports the mean of several runs; this is one seed.
""",
        figure=figure,
    )
