"""The same work written for each library.

Every factory takes a :class:`~benchmarks.cases.Case` and the shared data
and returns ``run(n)``, which processes the first ``n`` rows once; building
the model happens outside the timing. Each library is used the way its own
documentation teaches:

- dialnet: the public ``net.fit(...)`` with ``optimizer=dn.SGD(lr)``, one
  epoch, no shuffling (so its time includes what fit does per call: input
  checks, the running training accuracy and certainty, the divergence guard),
  on the engine ``fit`` picks (the compiled step when numba is installed);
  inference by ``net.predict_proba``. "numpy path" is the same with
  ``engine="numpy"``: the reference path, timed in the same run.
- PyTorch: an ``nn.Sequential`` of ``Linear`` and activation modules,
  ``nn.CrossEntropyLoss`` on the logits, ``torch.optim.SGD``, the usual
  ``zero_grad / loss / backward / step`` loop that also reads the loss
  (``loss.item()``, as fit and scikit-learn do), default threads;
  inference under ``torch.inference_mode()`` with a softmax.
- scikit-learn: ``MLPClassifier(solver="sgd", momentum=0, alpha=0)`` and
  ``partial_fit`` (one epoch in mini-batches); inference by ``predict_proba``.

A library that is not installed raises :class:`Unavailable`.
"""

from __future__ import annotations

import numpy as np

from .cases import LEARNING_RATE

TOOLS = ("dialnet", "torch", "sklearn")
CASE_TOOLS = ("dialnet", "numpy path", "torch", "sklearn")  # the cases also time dialnet's NumPy path


class Unavailable(Exception):
    """The library is not installed here."""


def _import_torch():
    try:
        import torch  # noqa: PLC0415  (heavy and optional)
    except ImportError as exc:
        raise Unavailable(f"torch is not installed ({exc})") from None
    return torch


def _import_mlp_classifier():
    try:
        from sklearn.neural_network import MLPClassifier  # noqa: PLC0415
    except ImportError as exc:
        raise Unavailable(f"scikit-learn is not installed ({exc})") from None
    return MLPClassifier


def _batches(n, batch):
    return range(0, n, batch)


# ------------------------------------------------------------------ dialnet


def dialnet_runner(case, X, y, seed=0, engine=None):
    import dialnet as dn  # noqa: PLC0415

    net = dn.mlp(list(case.sizes), activation=case.activation, output="softmax", seed=seed)
    if case.kind == "infer":
        def run(n):
            for start in _batches(n, case.batch):
                net.predict_proba(X[start : start + case.batch])
        return run

    optimizer = dn.SGD(lr=LEARNING_RATE)

    def run(n):
        history = net.fit(X[:n], y[:n], loss="cross_entropy", optimizer=optimizer, epochs=1,
                          batch_size=case.batch, shuffle=False, engine=engine)
        run.engine = history.engine
    return run


def dialnet_numpy_runner(case, X, y, seed=0):
    """dialnet with ``engine="numpy"``: the reference path (layers, losses, optimizers calling NumPy), for training;
    inference has one path (the NumPy layers), already timed as dialnet's."""
    if case.kind == "infer":
        raise Unavailable("inference has one path, timed as dialnet's")
    return dialnet_runner(case, X, y, seed, engine="numpy")


# -------------------------------------------------------------------- torch


def torch_sequential(torch, sizes, activation):
    """``Linear`` layers with the activation between them; the output is the logits."""
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    modules = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        modules.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            modules.append(act())
    return torch.nn.Sequential(*modules)


def torch_runner(case, X, y, seed=0):
    torch = _import_torch()
    torch.manual_seed(seed)
    model = torch_sequential(torch, case.sizes, case.activation)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    if case.kind == "infer":
        model.eval()

        def run(n):
            with torch.inference_mode():
                for start in _batches(n, case.batch):
                    torch.softmax(model(Xt[start : start + case.batch]), dim=1).numpy()
        return run

    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def run(n):
        total = 0.0
        for start in _batches(n, case.batch):
            xb, yb = Xt[start : start + case.batch], yt[start : start + case.batch]
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total
    return run


# ------------------------------------------------------------- scikit-learn


def sklearn_runner(case, X, y, seed=0):
    MLPClassifier = _import_mlp_classifier()
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(case.sizes[1:-1]),
        activation="logistic" if case.activation == "sigmoid" else case.activation,
        solver="sgd",
        learning_rate_init=LEARNING_RATE,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=min(case.batch, len(X)),
        shuffle=False,
        random_state=seed,
    )
    first = max(case.batch, case.sizes[-1])
    clf.partial_fit(X[:first], y[:first], classes=np.arange(case.sizes[-1]))
    if case.kind == "infer":
        def run(n):
            for start in _batches(n, case.batch):
                clf.predict_proba(X[start : start + case.batch])
        return run

    def run(n):
        clf.partial_fit(X[:n], y[:n])
    return run


RUNNERS = {"dialnet": dialnet_runner, "numpy path": dialnet_numpy_runner, "torch": torch_runner,
           "sklearn": sklearn_runner}
