"""Makhzani, Shlens, Jaitly, Goodfellow & Frey (2015), "Adversarial Autoencoders", section 6:
unsupervised clustering of MNIST into 16 and 30 clusters, scored as a classifier (test error).

  TFDS_DATA_DIR=../shared/tensorflow_datasets python -m experiments.reproduce aae_clustering

configs/aae_cluster.py's setup (encoder and decoder 1000-1000 ReLU, a softmax head of 16 or 30
clusters and 5 style units, two discriminators 1000-1000, CatGAN's cluster-balance term at weight
10, Bernoulli on dynamically binarized MNIST, Adam 1e-3, batch 128). The paper reports 9.55 ±
2.13 % test error with 16 clusters and 4.10 ± 1.13 % with 30; ours at the cpu budget (15 epochs,
the mean of three seeds) is 32.4 % and 20.9 %: see the page.
"""

import jax
import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import KMeans

from autoencoders import evaluation, plots, quantities, reproduce, sweeps

PAPER = (
    'Makhzani, Shlens, Jaitly, Goodfellow & Frey 2015, "Adversarial Autoencoders" '
    "(section 6, unsupervised clustering)"
)
# (clusters, part, the paper's % test error): 9.55 ± 2.13 and 4.10 ± 1.13 over runs.
PARTS = ((16, "aae_cluster", 9.55), (30, "aae_cluster30", 4.10))
SEEDS = {"tiny": (0,), "cpu": (0, 1, 2), "paper": (0, 1, 2)}
EPOCHS = {"tiny": 1, "cpu": 15, "paper": 200}
BUDGET = {
    "tiny": "1 epoch on the embedded 8x8 digits, tiny networks, one seed, 16 and 30 clusters.",
    "cpu": "15 epochs per seed, three seeds, for 16 and for 30 clusters.",
    "paper": "200 epochs per seed, three seeds, 16 and 30 clusters (the paper gives no schedule).",
}
HEAD_UNIT = "% test error, each cluster labelled as its most confident training image"
MAJORITY_UNIT = "% test error, each cluster labelled by its training images' majority"
USED_UNIT = "clusters that are the argmax of at least one test image"
KMEANS_UNIT = (
    "% test error, as many clusters by k-means on the pixels (seeded by the run's seed), each "
    "labelled by its training images' majority"
)


def assign_clusters(model, params, x, batch: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Each image's cluster, argmax q(y | x), and its confidence there as log-odds
    log q / (1 − q), from the logits in float64 (q itself rounds to 1 in float32)."""
    logits_of = jax.jit(model.cluster_logits)
    logits = np.concatenate(
        [
            np.asarray(logits_of(params, x[i : i + batch]), np.float64)
            for i in range(0, len(x), batch)
        ]
    )
    clusters = logits.argmax(axis=1)
    top = logits[np.arange(len(logits)), clusters]
    others = np.where(np.arange(logits.shape[1]) == clusters[:, None], -np.inf, logits)
    return clusters, top - logsumexp(others, axis=1)


def head_labels(clusters: np.ndarray, confidence: np.ndarray, labels: np.ndarray, k: int):
    """The paper's labelling: each of `k` clusters takes the label of the image most confidently
    in it (clusters, confidence, labels: (N,) each); −1 for an empty cluster."""
    head = np.full(k, -1)
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        head[c] = labels[members[np.argmax(confidence[members])]]
    return head


def majority_labels(clusters: np.ndarray, labels: np.ndarray, k: int):
    """Each of `k` clusters takes the most common label of its images; −1 for an empty cluster."""
    majority = np.full(k, -1)
    for c in np.unique(clusters):
        majority[c] = np.bincount(labels[clusters == c]).argmax()
    return majority


def measure(run: evaluation.Run) -> dict:
    """Test error of the clustering read as a classifier, its clusters labelled from the training
    images (whose labels training never saw) in two ways; how many clusters are used; and
    k-means on the same pixels, labelled by majority."""
    model = run.model
    if not hasattr(model, "cluster_logits"):
        raise ValueError(
            f"aae_clustering measures aae_cluster runs; {run.workdir} is a "
            f"{run.config.model.family!r} run."
        )
    if not run.has_labels:
        raise ValueError(
            f"aae_clustering scores clusters by labels; {run.workdir}'s data has none."
        )
    k, y_train, y_test = model.num_clusters, np.asarray(run.y_train), np.asarray(run.y_test)
    train_clusters, train_confidence = assign_clusters(model, run.params, run.x_train)
    test_clusters, _ = assign_clusters(model, run.params, run.x_test)
    head = head_labels(train_clusters, train_confidence, y_train, k)
    majority = majority_labels(train_clusters, y_train, k)
    # The baseline any clustering should beat: k-means on the same pixels, scored the same way.
    flat_train = np.asarray(run.x_train).reshape(len(run.x_train), -1)
    kmeans = KMeans(k, n_init=1, random_state=run.config.seed).fit(flat_train)
    kmeans_majority = majority_labels(kmeans.labels_, y_train, k)
    kmeans_test = kmeans.predict(np.asarray(run.x_test).reshape(len(run.x_test), -1))
    return {
        "head_error": quantities.per_image(100.0 * (head[test_clusters] != y_test), HEAD_UNIT),
        "majority_error": quantities.per_image(
            100.0 * (majority[test_clusters] != y_test), MAJORITY_UNIT
        ),
        "clusters_used": quantities.quantity(len(np.unique(test_clusters)), USED_UNIT),
        "kmeans_majority_error": quantities.per_image(
            100.0 * (kmeans_majority[kmeans_test] != y_test), KMEANS_UNIT
        ),
    }


def figure(ctx: reproduce.Context, path: str) -> str:
    """The paper's Figure 9 layout for the first seed: a row per cluster, its head (one-hot code,
    style 0) first, then test images the cluster holds."""
    per_row, run = 10, ctx.plans["aae_cluster"].runs[0]
    if not ctx.finished(run):
        return plots.image_grid(np.zeros((1, 1, 8, 8, 1)), path, "not trained yet")
    loaded = evaluation.load_run(run.workdir)
    model = loaded.model
    clusters, _ = assign_clusters(model, loaded.params, loaded.x_test)
    heads = np.asarray(model.cluster_heads(loaded.params))
    x_test = np.asarray(loaded.x_test)
    rows = np.ones((model.num_clusters, 1 + per_row, *x_test.shape[1:]), np.float32)
    order = np.random.default_rng(0).permutation(len(x_test))
    for c in range(model.num_clusters):
        rows[c, 0] = heads[c]
        members = order[clusters[order] == c][:per_row]
        rows[c, 1 : 1 + len(members)] = x_test[members]
    counts = np.bincount(clusters, minlength=model.num_clusters)
    return plots.image_grid(
        rows,
        path,
        f"AAE, {model.num_clusters} clusters: each row a cluster ({ctx.budget} budget)",
        f"{run.name}: first column the cluster head (one-hot y, style z = 0), then test images "
        "assigned to it",
        row_labels=[f"{c} ({n})" for c, n in enumerate(counts)],
    )


# Each measure's row label (after the clusters and seed) and unit.
ROWS = {
    "head_error": ("test error, paper's labelling", HEAD_UNIT),
    "majority_error": ("test error, majority labelling", MAJORITY_UNIT),
    "kmeans_majority_error": ("k-means on the pixels, test error", KMEANS_UNIT),
    "clusters_used": ("clusters used", USED_UNIT),
}


def row(part: str, name: str, measure: str, paper: float | None = None, **where) -> reproduce.Row:
    label, unit = ROWS[measure]
    return reproduce.Row(f"{name}: {label}", part, f"measure/{measure}", unit, paper, **where)


def get_reproduction(budget: str) -> reproduce.Reproduction:
    fixed = {"train.num_epochs": EPOCHS[budget]}
    if budget == "tiny":
        fixed.update({"arg:data": "digits", "network.hidden": (16,), "model.disc_hidden": (16,)})
    seeds = sweeps.axis("seed", SEEDS[budget])
    parts, rows, heads, kmeans = [], [], [], []
    for clusters, part, paper in PARTS:
        # 16 is configs/aae_cluster.py's default, left out of its runs' commands.
        overrides = {**fixed, "arg:clusters": clusters} if clusters != 16 else fixed
        parts.append(
            reproduce.Part(part, "configs/aae_cluster.py", sweeps.declare(seeds, overrides))
        )
        name = f"{clusters} clusters"
        rows += [
            row(part, name, "head_error", paper, pooled="seed"),
            row(part, name, "majority_error", pooled="seed"),
            row(part, name, "kmeans_majority_error", pooled="seed"),
        ]
        heads.append(rows[-3].label)
        kmeans.append(rows[-1].label)
        for seed in seeds:
            rows += [
                row(part, f"{name}, {sweeps.run_name(seed)}", measure, run=seed)
                for measure in ("head_error", "majority_error", "clusters_used")
            ]
    return reproduce.Reproduction(
        name="aae_clustering",
        title="Adversarial autoencoder: unsupervised clustering of MNIST into 16 and 30 clusters",
        paper=PAPER,
        budget=BUDGET[budget],
        parts=tuple(parts),
        rows=tuple(rows),
        ledger=(*heads, *kmeans),  # the pooled rows
        measure=measure,
        notes=NOTES,
        figure=figure,
    )


NOTES = """
Protocol. The model (configs/aae_cluster.py, `autoencoders/models/aae_cluster.py`): the encoder's
softmax head q(y | x) over K clusters (16, or 30 with `clusters=30`) is pushed onto a one-hot
uniform categorical by one discriminator and its 5 style units onto N(0, I) by another; the decoder
reconstructs x from (y, z). Labels are never used in training. Scoring, as the paper's: a test
image's cluster is argmax q(y | x), and each cluster takes the label of the image that is most
confidently in it — the paper picks that image from a validation set, we from the 60,000 training
images (their labels unused in training). Beside it, each cluster labelled by the majority label
of its training images: one image decides the paper's label, so it can mislabel a whole cluster.
Under both, a test image in a cluster that no training image falls in counts as an error. The
k-means rows cluster the same binarized training pixels into as many clusters (scikit-learn, one
initialisation seeded by the run's seed) and are scored by majority: the baseline a learnt
clustering should beat. The rows without a seed (the ledger's) are the mean over the three seeds
± the standard error of that mean across seeds, as the paper's ± is over runs; a seed's own ± is
the binomial standard error over the 10,000 test images. MNIST is **dynamically binarized** in
training (the scored images are binarized once).

Ours at the cpu budget (15 epochs, three seeds), test error with the paper's labelling / by
majority, against the paper's:

- 16 clusters: 32.4 ± 1.1 % (seeds 33.9, 30.3, 32.9) / 28.2 ± 0.7 %, paper 9.55 ± 2.13 %;
  k-means 31.3 %.
- 30 clusters: 20.9 ± 2.5 % (seeds 16.0, 24.6, 22.0) / 18.1 ± 1.7 %, paper 4.10 ± 1.13 %;
  k-means 24.1 %.

Every run uses all of its clusters. The paper's ordering holds: 30 clusters err far less than 16.
By majority the AAE beats k-means on the same pixels by 3 points at 16 clusters and 6 at 30; with
the paper's labelling only at 30 (at 16, 32.4 against 31.3 %). The figure (16 clusters, seed 0)
shows where the error is: most clusters of 0, 1, 2, 6 and 7 are nearly pure, while 4, 7 and 9
share three clusters, and 2, 3, 5 and 8 mix in others. The gap to the paper, three to five times
its error, is not explained here: the paper gives no schedule, and the paper budget has not been
run. It is not the training's length at this scale: seed 0 of 16 clusters, trained on from its
15 epochs (`python -m experiments.train --config=configs/aae_cluster.py --workdir=W
--config.seed=0 --config.train.num_epochs=E`, W a copy of its run directory, E = 30 then 45, each
measured by `python -m experiments.reproduce aae_clustering --budget=cpu --measure=W`), scored
34.08 / 29.47 % at 30 epochs and 34.67 / 30.51 % at 45 (paper's labelling / majority), against
33.88 / 29.10 % at 15. Nor does a smaller style, which leaves the decoder less room to carry the
digit outside y: 2 style units (`--config=configs/aae_cluster.py:style=2`, 15 epochs, seed 0)
scored 43.10 / 38.34 %.

A deviation from the paper: the generator phase adds 10·KL(q̄(y) ‖ uniform), q̄ the minibatch
mean of q(y | x) (the marginal-entropy term of Springenberg's CatGAN, 2016). Without it
(`--config.model.balance_weight=0`, the paper's objective) every image went to one cluster within
the first 10 steps and the saturated softmax kept them there: all 10,000 test images in one
cluster after the first epoch, at learning rates 1e-3 and 1e-4 and with 2 or 5 style units, and
with one epoch of reconstruction alone first (then 2 clusters; 16 clusters in each case). The
paper gives no schedule, optimizer or style size for this experiment; the 1000-1000 networks are
configs/aae.py's and the 5 style units our choice. Smaller weights of the balance term, 16
clusters, 15 epochs (`--config=configs/aae_cluster.py:balance=B --config.seed=S`, each run
measured as above; paper's labelling / majority, and clusters used): B = 3, seed 0: 44.71 / 28.01
%, 16 used; B = 1, seeds 0, 1, 2: 32.40 / 25.54, 39.78 / 34.81 and 41.73 / 39.76 %, 14, 14 and 11
used, a mean of 37.97 ± 2.84 / 33.37 ± 4.17 % against B = 10's 32.35 ± 1.07 / 28.17 ± 0.65 %;
B = 0.3, seed 0: 60.53 / 50.09 %, 6 used. Weaker balancing leaves clusters empty and errs more
across seeds (one seed at B = 1 erred less than B = 10's mean by majority labelling, 25.54
against 28.17 %): it does not close the gap to the paper.
"""
