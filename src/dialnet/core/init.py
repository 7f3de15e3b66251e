"""Initializers: the dials' random starting settings.

Each takes ``(n_in, n_out, rng, dtype)`` and returns a ``(n_in, n_out)``
array; ``rng`` is a seeded ``numpy.random.Generator`` so the same seed
gives the same dials.
"""

from __future__ import annotations

import math


from ..errors import lookup


def glorot_uniform(n_in, n_out, rng, dtype):
    """U(-a, a) with a = sqrt(6 / (n_in + n_out)) (Glorot & Bengio 2010)."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)


def glorot_uniform_sigmoid(n_in, n_out, rng, dtype):
    """U(-a, a) with a = sqrt(2 / (n_in + n_out)): scikit-learn's MLP for logistic (sigmoid) units."""
    limit = math.sqrt(2.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)


def glorot_normal(n_in, n_out, rng, dtype):
    """N(0, 2 / (n_in + n_out))."""
    std = math.sqrt(2.0 / (n_in + n_out))
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype)


def he_normal(n_in, n_out, rng, dtype):
    """N(0, 2 / n_in) (He et al. 2015), for ReLU layers."""
    std = math.sqrt(2.0 / n_in)
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype)


def he_uniform(n_in, n_out, rng, dtype):
    """U(-a, a) with a = sqrt(6 / n_in)."""
    limit = math.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)


def uniform(n_in, n_out, rng, dtype):
    """The articles' plain random dials: U(0, 1), as in the from-scratch recipe."""
    return rng.uniform(0.0, 1.0, size=(n_in, n_out)).astype(dtype)


def lecun_normal(n_in, n_out, rng, dtype):
    """N(0, 1 / n_in)."""
    std = math.sqrt(1.0 / n_in)
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype)


INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "glorot_uniform_sigmoid": glorot_uniform_sigmoid,
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "uniform": uniform,
    "lecun_normal": lecun_normal,
}

# The initializer that keeps signal variance steady through each activation.
AUTO_FOR_ACTIVATION = {
    "relu": "he_normal",
    "leaky_relu": "he_normal",
}


def get_initializer(name):
    """Look an initializer up by name (or pass a callable through)."""
    if callable(name):
        return name
    return lookup(INITIALIZERS, name, "initializer", fix="pass init='auto' (He for ReLU, Glorot otherwise)", also=("auto",))
