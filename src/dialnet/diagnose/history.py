"""Reading a training run back: its per-epoch series, the divergences it met and why it stopped.

A run reaches the doctor and the plots in several forms: the ``History``
that ``fit`` returns (also kept as ``net.history``), its ``.history`` dict
or its ``to_state()`` dict, a ``DivergenceError`` raised by ``fit`` (which
carries the History), or a model file's metadata. :class:`RunRecord` is
the one form they read. Whatever did not come from this process (a dict, a
model file) is not trusted: only lists of numbers and plain divergence
records are kept.
"""

from __future__ import annotations

from ..errors import ConfigError, DivergenceError, type_name
from ..train import History


class RunRecord:
    """What the doctor reads about one training run.

    Attributes
    ----------
    series : dict
        Per-epoch lists of numbers: ``"loss"``, ``"lr"``, ``"accuracy"``, ...
    divergences : list of dict
        Each NaN/inf that fit met (``History.divergences``): epoch, step,
        what, lr, action, ...
    stop_reason : str or None
        Why the run stopped, as fit said it.
    """

    def __init__(self, series=None, divergences=(), stop_reason=None):
        self.series = series if series is not None else {}
        self.divergences = list(divergences)
        self.stop_reason = stop_reason

    @property
    def losses(self):
        return self.series.get("loss", [])

    @property
    def lrs(self):
        return self.series.get("lr")

    @property
    def diverged(self) -> bool:
        return bool(self.divergences) or (isinstance(self.stop_reason, str) and self.stop_reason.startswith("diverged"))

    @property
    def judgeable(self) -> bool:
        """True when there is something to judge the learning rate by: epochs of loss, or a divergence."""
        return bool(self.losses) or self.diverged

    def __repr__(self):
        return f"RunRecord(epochs={len(self.losses)}, divergences={len(self.divergences)}, stop_reason={self.stop_reason!r})"


def clean_history(hist):
    """Keep only the per-epoch series that are lists of numbers (a model file's metadata is not trusted).

    Takes a ``History.history`` dict, or a dict holding one under ``"history"``
    (``History.to_state()``, a model file's metadata).
    """
    if not isinstance(hist, dict):
        return {}
    inner = hist.get("history")
    if isinstance(inner, dict):
        hist = inner
    return {
        str(k): [float(x) for x in v]
        for k, v in hist.items()
        if isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    }


def _plain(value):
    return value is None or isinstance(value, (str, int, float))


def clean_divergences(records):
    """Divergence records from an untrusted source: dicts of plain values only (str keys, str/number/None values)."""
    if not isinstance(records, list):
        return []
    return [
        {k: v for k, v in d.items() if isinstance(k, str) and _plain(v)}
        for d in records
        if isinstance(d, dict)
    ]


def _from_history(history):
    return RunRecord(history.history, history.divergences, history.stop_reason)


def _from_dict(hist):
    stop_reason = hist.get("stop_reason")
    return RunRecord(
        clean_history(hist),
        clean_divergences(hist.get("divergences")),
        stop_reason if isinstance(stop_reason, str) else None,
    )


def read_run(source):
    """A :class:`RunRecord` from a History, a history dict, or a DivergenceError raised by fit.

    ``None`` gives ``None``; anything else raises ``ConfigError``.
    """
    if source is None:
        return None
    if isinstance(source, History):
        return _from_history(source)
    if isinstance(source, dict):
        return _from_dict(source)
    if isinstance(source, DivergenceError):
        if isinstance(source.history, History):
            record = _from_history(source.history)
            if not record.divergences and isinstance(source.details, dict):
                record.divergences = [source.details]
            return record
        details = source.details if isinstance(source.details, dict) else {"what": source.what}
        return RunRecord(divergences=[details])
    raise ConfigError(
        "history must be a dialnet History, a dict of per-epoch lists, or the DivergenceError fit raised",
        expected="net.fit(...)'s return value, history.history, or the caught DivergenceError",
        got=type_name(source),
        fix="pass history=net.fit(...)",
    )


def stored_run(net):
    """The :class:`RunRecord` kept with a network: ``net.history`` (set by fit), or a model file's metadata; or None."""
    history = getattr(net, "history", None)
    if isinstance(history, (History, dict)):
        return read_run(history)
    extra = (getattr(net, "metadata", None) or {}).get("extra")
    if not isinstance(extra, dict):
        return None
    stop_reason = extra.get("stop_reason")
    record = RunRecord(
        clean_history(extra.get("history")),
        clean_divergences(extra.get("divergences")),
        stop_reason if isinstance(stop_reason, str) else None,
    )
    return record if record.series or record.diverged else None


def stored_history(net):
    """The per-epoch series kept with a network: ``net.history`` (set by fit) or a model file's metadata; or None."""
    history = getattr(net, "history", None)
    if isinstance(history, History):
        return history.history
    if isinstance(history, dict):
        return clean_history(history)
    extra = (getattr(net, "metadata", None) or {}).get("extra")
    if isinstance(extra, dict):
        return clean_history(extra.get("history")) or None
    return None
