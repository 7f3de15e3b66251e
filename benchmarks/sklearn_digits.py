"""``python -m benchmarks.sklearn_digits``: DialnetClassifier against MLPClassifier on scikit-learn's digits.

The README's figure: 5-fold stratified CV (shuffled with seed 0), both
behind a StandardScaler, hidden_layer_sizes=(20, 20), max_iter=200,
random_state 0 to 4 (the settings of
``tests/estimators/test_sklearn.py::test_digits_accuracy_parity_with_mlpclassifier``);
accuracy for seed 0, the mean over the seeds, and the CPU time of the 25
fits (``time.process_time``, so the figure means little only where other
work shares the cores). Run it with one BLAS thread for a fair count:
``OPENBLAS_NUM_THREADS=1 python -m benchmarks.sklearn_digits``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def main():
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dialnet.sklearn import DialnetClassifier

    X, y = load_digits(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    runs = [("dialnet (float64, the default)", DialnetClassifier, {}),
            ("dialnet (dtype='float32')", DialnetClassifier, {"dtype": "float32"}),
            ("scikit-learn MLPClassifier", MLPClassifier, {})]
    for name, cls, extra in runs:
        scores, cpu = [], 0.0
        for seed in range(5):
            model = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(20, 20), max_iter=200, random_state=seed, **extra))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                started = time.process_time()
                scores.append(cross_val_score(model, X, y, cv=cv).mean())
                cpu += time.process_time() - started
        print(f"{name}: seed 0 {scores[0]:.4f}, mean over seeds 0-4 {np.mean(scores):.4f}, CPU {cpu:.1f} s for 25 fits")


if __name__ == "__main__":
    main()
