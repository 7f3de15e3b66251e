"""Seeded splits of a data set's rows: train/test, K folds, a random subset.

Every function returns row indices (sorted, int64) and takes a seed: the
same labels and seed give the same split on any machine. Stratified
splits keep each class's share of the rows; they are what classification
uses, plain random splits what regression uses.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import InvalidValueError


def _check_fraction(fraction):
    if not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0.0 < fraction < 1.0):
        raise InvalidValueError("the test fraction must be between 0 and 1", expected="0 < fraction < 1", got=repr(fraction),
                                fix="e.g. 0.2 to hold out a fifth of the rows")


def _check_folds(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InvalidValueError("the number of folds must be a whole number >= 2", expected="k >= 2", got=repr(k),
                                fix="e.g. 5 or 10 folds")


def stratified_split(y, fraction, seed):
    """Indices ``(train, test)`` with ``fraction`` of each class in test (at least one row per class that has 2+)."""
    _check_fraction(fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * fraction))
        k = min(max(k, 1 if len(idx) > 1 else 0), len(idx) - 1)
        test.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def random_split(n, fraction, seed):
    """Indices ``(train, test)`` of ``n`` rows, ``fraction`` of them (at least 1, at most n - 1) in test."""
    _check_fraction(fraction)
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(int(round(n * fraction)), 1), n - 1)
    return np.sort(order[k:]), np.sort(order[:k])


def split_rows(y, fraction, seed, stratify=True):
    """Indices ``(train, test)``: :func:`stratified_split` of the labels ``y``, or a :func:`random_split`."""
    return stratified_split(y, fraction, seed) if stratify else random_split(len(y), fraction, seed)


def stratified_folds(y, k, seed):
    """``k`` disjoint test-index arrays covering every row; each class dealt round-robin after a seeded shuffle."""
    y = np.asarray(y)
    _check_folds(k)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = (start + np.arange(len(idx))) % k
        start = (start + len(idx)) % k  # keeps the folds' sizes within one of each other
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def random_folds(n, k, seed):
    """``k`` disjoint test-index arrays of ``n`` rows, seeded (plain K-fold)."""
    _check_folds(k)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def fold_rows(y, k, seed, stratify=True):
    """``k`` disjoint test-index arrays: :func:`stratified_folds` of the labels ``y``, or :func:`random_folds`."""
    return stratified_folds(y, k, seed) if stratify else random_folds(len(y), k, seed)


def subset(X, y, n, seed):
    """At most ``n`` rows of ``X`` and ``y``, a seeded random choice kept in the original order (``n=None``: all)."""
    if X is None or n is None or len(X) <= n:
        return X, y
    keep = np.sort(np.random.default_rng(seed).permutation(len(X))[:n])
    return X[keep], y[keep]


def row_fingerprint(X, labels) -> str:
    """A digest of a data set's rows and labels, as read (a table's text cells, or numbers): stored with a model
    at training time, so ``evaluate --split test`` can tell that it re-splits the very rows the run split."""
    digest = hashlib.blake2b(digest_size=16)
    X = np.asarray(X)
    labels = [str(v) for v in np.asarray(labels).tolist()]
    digest.update(f"{X.shape}|{len(labels)}".encode())
    if X.dtype == object or X.dtype.kind in "US":
        for row, label in zip(X.tolist(), labels):
            digest.update(("\x1f".join(map(str, row)) + "\x1d" + label + "\x1e").encode("utf-8", "surrogatepass"))
    else:
        digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
        digest.update("\x1e".join(labels).encode())
    return digest.hexdigest()
