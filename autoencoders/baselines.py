"""Baselines and the metrics a model is compared with them by: PCA, manifold learning and probes.

Functions of arrays (images, codes, labels), with no model in them. Dimensionality reduction: the
squared reconstruction error of PCA with as many components as the model has latent dimensions
(`pca_reconstruction_errors`). Manifold learning: 2-D embeddings of test images by PCA, Isomap and
t-SNE (`baseline_embeddings`), and of the model's codes (`latent_to_2d`), each scored by
trustworthiness, continuity (Venna & Kaski 2001) and kNN label accuracy (`embedding_quality`).
Representation: linear-probe and kNN accuracy on the model's latent means, on PCA features of the
same size and on raw pixels (`representation`, built on `probe_accuracies`). Every score is a
`quantities.quantity` with its unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from scipy import stats
from sklearn import decomposition, manifold, neighbors, pipeline, preprocessing
from sklearn.linear_model import LogisticRegression

from autoencoders.quantities import quantity

ACCURACY_UNIT = "fraction of test examples classified correctly"


def flatten(x: jax.Array | np.ndarray) -> np.ndarray:
    """(N, H, W, C) images -> (N, H·W·C) float64 numpy rows."""
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# Dimensionality reduction
# ---------------------------------------------------------------------------------------------


def pca_reconstruction_errors(
    train: np.ndarray, test: np.ndarray, num_components: int
) -> np.ndarray:
    """Per-image squared error (summed over pixels) of PCA fitted on `train`, applied to `test`.

    On its own training set the mean equals the sum of the discarded eigenvalues of the
    covariance with 1/N normalisation, i.e. (N − 1)/N times sklearn's `explained_variance_`.
    """
    pca = decomposition.PCA(n_components=num_components).fit(flatten(train))
    test = flatten(test)
    restored = pca.inverse_transform(pca.transform(test))
    return np.sum((test - restored) ** 2, axis=1)


# ---------------------------------------------------------------------------------------------
# Manifold learning
# ---------------------------------------------------------------------------------------------


def continuity(original: np.ndarray, embedding: np.ndarray, n_neighbors: int) -> float:
    """Continuity (Venna & Kaski 2001): trustworthiness with the two spaces' roles swapped,
    so it penalises original-space neighbours that the embedding tears apart."""
    return float(manifold.trustworthiness(embedding, original, n_neighbors=n_neighbors))


def knn_accuracy_loo(features: np.ndarray, labels: np.ndarray, n_neighbors: int) -> float:
    """Leave-one-out kNN label accuracy within one set of points: each point gets the majority
    label of its `n_neighbors` nearest other points (ties: the smallest label)."""
    nearest = neighbors.NearestNeighbors(n_neighbors=n_neighbors).fit(features)
    votes = labels[nearest.kneighbors(return_distance=False)]  # the point itself excluded
    return float(np.mean(stats.mode(votes, axis=1).mode == labels))


def embedding_quality(
    original: np.ndarray,
    embedding: np.ndarray,
    labels: np.ndarray | None,
    n_neighbors: int = 10,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Trustworthiness, continuity (in [0, 1], higher is better) and kNN label accuracy of a 2-D
    embedding of `original` points (rows)."""
    original, embedding = flatten(original), np.asarray(embedding, np.float64)
    unit = f"in [0, 1], {n_neighbors} neighbours; 1 = neighbourhoods preserved"
    out = {
        "trustworthiness": quantity(
            manifold.trustworthiness(original, embedding, n_neighbors=n_neighbors), unit
        ),
        "continuity": quantity(continuity(original, embedding, n_neighbors), unit),
    }
    if labels is not None and np.all(labels >= 0):
        out["knn_accuracy"] = quantity(
            knn_accuracy_loo(embedding, labels, knn_neighbors),
            f"{ACCURACY_UNIT} ({knn_neighbors}-NN in the embedding, leave-one-out)",
        )
    return out


def baseline_embeddings(x: np.ndarray, seed: int, n_neighbors: int = 10) -> dict[str, np.ndarray]:
    """2-D embeddings of the images by PCA, Isomap and t-SNE (each fitted on these images)."""
    x = flatten(x)
    return {
        "pca": decomposition.PCA(n_components=2).fit_transform(x),
        "isomap": manifold.Isomap(n_neighbors=n_neighbors, n_components=2).fit_transform(x),
        "tsne": manifold.TSNE(n_components=2, init="pca", random_state=seed).fit_transform(x),
    }


def latent_to_2d(latents: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D latents as they are; higher-dimensional ones projected by PCA or t-SNE."""
    return latent_plane(latents, method, seed)[0]


def latent_plane(
    latents: np.ndarray, method: str, seed: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray] | None]:
    """(the latents in 2-D, the map from that plane back to latent space, or None).

    2-D latents: themselves and the identity (1-D ones: on the line y = 0). PCA: the plane
    through the codes' mean spanned by their two principal directions, and its inverse. t-SNE
    has no inverse: None."""
    latents = np.asarray(latents, np.float64)
    if latents.shape[1] <= 2:
        dim = latents.shape[1]
        points = np.pad(latents, ((0, 0), (0, 2 - dim)))
        return points, lambda plane: np.asarray(plane, np.float64)[:, :dim]
    if method == "tsne":
        tsne = manifold.TSNE(n_components=2, init="pca", random_state=seed)
        return tsne.fit_transform(latents), None
    pca = decomposition.PCA(n_components=2).fit(latents)
    return pca.transform(latents), pca.inverse_transform


def latent_method_name(latent_dim: int, method: str) -> str:
    return "model latent" if latent_dim <= 2 else f"model latent ({method} to 2-D)"


# ---------------------------------------------------------------------------------------------
# Representation
# ---------------------------------------------------------------------------------------------


def probe_accuracies(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Test accuracy of a linear probe (standardised logistic regression) and of kNN."""
    linear = pipeline.make_pipeline(
        preprocessing.StandardScaler(), LogisticRegression(max_iter=1000)
    )
    knn = neighbors.KNeighborsClassifier(n_neighbors=knn_neighbors)
    return {
        "linear_probe": quantity(
            linear.fit(train_features, train_labels).score(test_features, test_labels),
            f"{ACCURACY_UNIT} (logistic regression on standardised features)",
        ),
        "knn": quantity(
            knn.fit(train_features, train_labels).score(test_features, test_labels),
            f"{ACCURACY_UNIT} ({knn_neighbors}-NN, Euclidean)",
        ),
    }


def representation(
    latents_train: np.ndarray,
    latents_test: np.ndarray,
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Probes on latent means vs PCA features of the same size (fitted on these training
    images) vs raw pixels."""
    x_train, x_test = flatten(x_train), flatten(x_test)
    pca = decomposition.PCA(n_components=latents_train.shape[1]).fit(x_train)
    features = {
        "latent": (latents_train, latents_test),
        f"pca_{latents_train.shape[1]}": (pca.transform(x_train), pca.transform(x_test)),
        "pixels": (x_train, x_test),
    }
    out = {
        name: probe_accuracies(train, y_train, test, y_test, knn_neighbors)
        for name, (train, test) in features.items()
    }
    out["num_train"], out["num_test"] = len(y_train), len(y_test)
    return out
