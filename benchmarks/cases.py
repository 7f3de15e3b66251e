"""What is timed: the cases of issues 5 and 17, their sizes, and the data they share.

A training case times one pass of ``samples`` rows in mini-batches of
``batch``: per batch a forward pass, the cross-entropy loss, the backward
pass and a plain SGD update (lr 0.01, no momentum). An inference case times
class certainties (softmax outputs) for ``samples`` rows, ``batch`` at a
time. ``quick_samples`` is the size ``--quick`` uses.

The training sizes are epochs of realistic length: dialnet's ``fit`` does
some work once per call and per epoch that a bare loop does not (input
checks, the divergence guard's snapshot, the running training accuracy), and
a short epoch would time that instead of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED_NET = (625, 20, 20, 10)  # the articles' 25x25-pixel network
LEARNING_RATE = 0.01
DATA_SEED = 0


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    sizes: tuple
    activation: str
    batch: int
    kind: str  # "train" or "infer"
    samples: int
    quick_samples: int
    against_peak: bool = False  # also report dialnet (and torch) as a share of the float32 matmul peak

    @property
    def label(self) -> str:
        return f"{self.key}. {self.title}"

    def n_samples(self, quick: bool) -> int:
        return self.quick_samples if quick else self.samples

    def train_flops_per_sample(self) -> int:
        """Matrix-product FLOPs of one training sample: forward ``X @ W``, ``dW = X.T @ dZ``, and
        ``dX = dZ @ W.T`` for every layer but the first (nobody needs the input's gradient)."""
        products = [n_in * n_out for n_in, n_out in zip(self.sizes, self.sizes[1:])]
        return 2 * (2 * sum(products) + sum(products[1:]))


CASES = (
    Case("1", "seed net 625-20-20-10 sigmoid, batch 1 (online SGD)", SEED_NET, "sigmoid", 1, "train", 3_000, 100,
         against_peak=True),
    Case("2", "seed net 625-20-20-10 sigmoid, batch 32", SEED_NET, "sigmoid", 32, "train", 32_000, 256,
         against_peak=True),
    Case("3", "784-256-128-10 ReLU, batch 128", (784, 256, 128, 10), "relu", 128, "train", 65_536, 256,
         against_peak=True),
    Case("4", "784-1024-1024-10 ReLU, batch 256", (784, 1024, 1024, 10), "relu", 256, "train", 32_768, 256,
         against_peak=True),
    Case("5a", "inference, seed net, batch 1", SEED_NET, "sigmoid", 1, "infer", 3_000, 100),
    Case("5b", "inference, seed net, batch 1024", SEED_NET, "sigmoid", 1024, "infer", 65_536, 1_024),
)


def make_data(case: Case, n: int, seed: int = DATA_SEED):
    """Standard-normal float32 features and uniform integer labels, the same for every tool."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, case.sizes[0]), dtype=np.float32)
    y = rng.integers(0, case.sizes[-1], size=n, dtype=np.int64)
    return X, y
