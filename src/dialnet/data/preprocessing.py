"""The Preprocessor: how raw inputs become a network's inputs, learned on the training rows and saved with the model.

A :class:`Preprocessor` holds, for one model:

- ``kind``: ``"table"`` (one scaling constant per input) or ``"image"``
  (one constant over all pixels: a border pixel that is nearly always
  black must not be blown up), with ``image_size``, ``pixel_max`` and the
  training images' ``background`` (the mean of their border pixels);
- the column rules of a CSV table (:mod:`dialnet.data.columns`): numeric
  or one-hot, imputation values, dropped ID columns;
- the scaling and its constants:
  ``minmax``: ``x' = (x - min) / (max - min)``;
  ``standard``: ``x' = (x - mean) / std``; ``none`` (a constant feature
  maps to 0);
- ``feature_names``, the CSV's label column ``target``, and for regression
  ``target_mean`` / ``target_std`` (the network learns ``(y - mean) / std``).

``fit`` learns the constants from training rows only; ``transform``
applies them (text cells are encoded by the column rules first), so
``evaluate``, ``predict`` and any Python caller prepare new inputs exactly
as training did. ``to_config`` / ``from_config`` are the JSON object saved
in the model file under ``"preprocessing"``, unchanged since dialnet 0.1::

    {"version": 1, "input": "table" | "image", "scaling": "minmax",
     "min": [...], "max": [...]            # or "mean"/"std"; scalars for images
     "columns": [...], "feature_names": [...], "target": "class",   # tables
     "image_size": 25, "pixel_max": 255, "background": 0.02,         # images
     "target_mean": 3.1, "target_std": 0.7}                          # regression

``from_config`` checks every field (a ``ModelFileError`` names the bad
one); keys it does not know are kept and written back unchanged. A
Preprocessor also reads like that JSON object (``pre["image_size"]``),
as ``net.preprocessing`` did when it was a plain dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, InvalidValueError, ModelFileError, ShapeError
from .columns import (  # noqa: F401  (MISSING, is_missing, MAX_CATEGORIES: re-exported, as before)
    MAX_CATEGORIES,
    MISSING,
    ColumnRule,
    encode_cells,
    fit_column_rules,
    is_missing,
)
from .images import MIN_SIZE

SCALINGS = ("minmax", "standard", "none")
KINDS = ("table", "image")
VERSION = 1
PIXEL_MAX = 255
_CONSTANTS = {"minmax": ("min", "max"), "standard": ("mean", "std"), "none": ()}


def check_scaling(scaling) -> str:
    """``"minmax"``, ``"standard"`` or ``"none"`` (case and dashes ignored); a ConfigError otherwise."""
    name = str(scaling).lower().replace("-", "")
    if name in SCALINGS:
        return name
    raise ConfigError(f"unknown scaling {scaling!r}", expected="one of " + ", ".join(SCALINGS), got=repr(scaling),
                      fix="use --scale minmax (features into [0, 1]), standard (mean 0, std 1) or none")


def image_side(n_inputs, preprocessing=None):
    """The side of the square images a model with ``n_inputs`` inputs takes, or None.

    The one rule for every command and figure: the size an image
    Preprocessor stored; none for a table whose columns have names;
    otherwise (e.g. a network built in Python) the square root of
    ``n_inputs`` when it is a whole number of at least ``MIN_SIZE`` (4)
    pixels (25 for 625 inputs, 28 for 784).
    """
    if preprocessing is not None and preprocessing.kind == "image" and preprocessing.image_size:
        return int(preprocessing.image_size)
    if preprocessing is not None and (preprocessing.columns or preprocessing.feature_names is not None):
        return None  # a table's named columns
    side = math.isqrt(int(n_inputs))
    return side if side >= MIN_SIZE and side * side == n_inputs else None


def _plain(value):
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else [float(v) for v in value]


def _array(value):
    return None if value is None else np.asarray(value, dtype=np.float64)


@dataclass(eq=False, repr=False)
class Preprocessor(Mapping):
    """Raw inputs -> network inputs, with every constant learned on the training rows (see the module docstring).

    Parameters
    ----------
    kind : {"table", "image"}
    scaling : {"minmax", "standard", "none"}
    feature_names : list of str, optional
        Names of the inputs (replaced by the encoded names when column rules are fitted).
    target : str, optional
        The CSV's label column, so evaluate finds it again.
    image_size, background : optional
        For images: the side of the square, and the mean of the training images' border pixels.

    The learned attributes (``min``/``max`` or ``mean``/``std`` as float64
    arrays, ``columns``, ``target_mean``/``target_std``) are set by
    :meth:`fit` and :meth:`fit_target`, or read from a model file by
    :meth:`from_config`. ``notes`` lists what fitting did that a user should
    hear about (dropped ID columns, pooled values, imputed cells); it is
    not saved.

    Examples
    --------
    >>> pre = Preprocessor(scaling="standard")
    >>> X_train_scaled = pre.fit_transform(X_train)
    >>> X_test_scaled = pre.transform(X_test)
    """

    kind: str = "table"
    scaling: str = "none"
    feature_names: list | None = None
    target: str | None = None
    image_size: int | None = None
    background: float | None = None
    pixel_max: float | None = None
    columns: list | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    target_mean: float | None = None
    target_std: float | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown preprocessing kind {self.kind!r}", expected="'table' or 'image'", got=repr(self.kind),
                              fix="use kind='table' for rows of features, kind='image' for pixels")
        self.scaling = check_scaling(self.scaling)
        if self.kind == "image" and self.pixel_max is None:
            self.pixel_max = PIXEL_MAX

    # ------------------------------------------------------------ what it knows

    @property
    def n_inputs(self):
        """The network's input width after encoding, when the preprocessor knows it (else None)."""
        if self.columns:
            return sum(rule.width for rule in self.columns)
        if self.feature_names is not None:
            return len(self.feature_names)
        if self.kind == "image" and self.image_size:
            return int(self.image_size) ** 2
        for key in _CONSTANTS[self.scaling]:
            value = getattr(self, key)
            if value is not None and value.ndim == 1:
                return int(value.shape[0])
        return None

    @property
    def column_names(self):
        """The raw CSV feature columns the rules read, in order (None without column rules)."""
        return [rule.name for rule in self.columns] if self.columns else None

    # ------------------------------------------------------------ learning

    def fit(self, X, column_names=None, *, max_categories=MAX_CATEGORIES, where="the table"):
        """Learn the constants from training rows ``X``; returns ``self``.

        ``X`` is numbers ``(n, features)``, or, with ``column_names``, a
        table's raw text cells ``(n, columns)``: the column rules are then
        fitted first and the scaling on the encoded rows.
        """
        self._fit_scaling(self._fit_columns(X, column_names, max_categories, where))
        return self

    def fit_transform(self, X, column_names=None, *, dtype=np.float32, max_categories=MAX_CATEGORIES, where="the table"):
        """:meth:`fit`, then the transformed training rows (text cells are encoded once)."""
        encoded = self._fit_columns(X, column_names, max_categories, where)
        self._fit_scaling(encoded)
        return self.scale(encoded, dtype)

    def fit_target(self, y):
        """Learn ``target_mean`` / ``target_std`` of regression targets (training rows only); returns ``self``."""
        y = np.asarray(y, dtype=np.float64)
        std = float(y.std())
        self.target_mean, self.target_std = float(y.mean()), (std if std > 1e-12 else 1.0)
        return self

    def _fit_columns(self, X, column_names, max_categories, where):
        self.notes = []
        if column_names is None:
            return np.asarray(X, dtype=np.float64)
        self.columns, self.notes = fit_column_rules(X, list(column_names), max_categories, where)
        self.feature_names = [name for rule in self.columns for name in rule.feature_names]
        encoded, imputed = self.encode(X)
        if imputed:
            self.notes.append(f"imputed {imputed:,} missing cells in the training rows (median, or the column's "
                              "'(missing)' category)")
        return encoded

    def _fit_scaling(self, X):
        if X.ndim != 2 or X.shape[0] == 0:
            raise ShapeError("preprocessing is fitted on a table of samples", expected="shape (n >= 1, features)",
                             got=f"shape {X.shape}", fix="pass the training inputs as a 2-D array")
        axis = None if self.kind == "image" else 0
        self.min = self.max = self.mean = self.std = None
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name, once
            if self.scaling == "minmax":
                self.min, self.max = X.min(axis=axis), X.max(axis=axis)
                spread = self.max - self.min
            elif self.scaling == "standard":
                self.mean, self.std = X.mean(axis=axis), X.std(axis=axis)
                spread = self.std
            else:
                spread = np.zeros(1)
        for value in (self.min, self.max, self.mean, self.std, spread):
            if value is not None and not np.all(np.isfinite(value)):
                self._overflow(X, np.atleast_1d(~np.isfinite(value)))
        if self.kind == "image" and self.image_size is None:
            self.image_size = int(round(math.sqrt(X.shape[1])))

    # ------------------------------------------------------------ applying

    def transform(self, X, dtype=np.float32) -> np.ndarray:
        """Raw inputs -> network inputs (a new array of ``dtype``).

        With column rules, ``X`` may be the raw text cells of the table's
        feature columns: they are encoded first (:meth:`encode`).
        """
        X = np.asarray(X)
        if self.columns and (X.dtype == object or X.dtype.kind in "US"):
            X, _ = self.encode(X)
        return self.scale(X, dtype)

    def encode(self, cells):
        """Text cells ``(n, columns)`` -> ``(inputs float64, cells imputed)`` by the column rules."""
        cells = np.asarray(cells, dtype=object)
        rules = self.columns or []
        if cells.ndim != 2 or cells.shape[1] != len(rules):
            raise ShapeError("the rows have a different number of columns than the model was trained on",
                             expected=f"{len(rules)} feature columns ({', '.join(r.name for r in rules[:8])})",
                             got=f"{cells.shape[1] if cells.ndim == 2 else cells.shape} columns",
                             fix="pass the same columns as in training (the label column left out)")
        return encode_cells(rules, cells)

    def scale(self, X, dtype=np.float32) -> np.ndarray:
        """Numeric inputs (already encoded) -> scaled inputs of ``dtype``."""
        X = raw = np.asarray(X, dtype=np.float64)
        keys = _CONSTANTS[self.scaling]
        if keys and getattr(self, keys[0]) is not None:
            offset, spread = getattr(self, keys[0]), getattr(self, keys[1])
            if offset.ndim == 1 and X.ndim == 2 and offset.shape[0] != X.shape[1]:
                raise ShapeError("the inputs have a different number of features than the model was trained on",
                                 expected=f"{offset.shape[0]} features" + self._names_hint(), got=f"{X.shape[1]} features",
                                 fix="pass the same columns as in training (the label column left out)")
            with np.errstate(over="ignore", invalid="ignore"):
                scale = spread - offset if self.scaling == "minmax" else spread
                scale = np.where(np.abs(scale) > 1e-12, scale, 1.0)  # a constant feature: shift only, maps to 0
                X = (X - offset) / scale
        with np.errstate(over="ignore", invalid="ignore"):
            out = X.astype(dtype)
        if X.ndim == 2 and X.size and not np.isfinite(out).all():
            overflow = np.isfinite(raw) & ~np.isfinite(out)  # finite in, not finite out (NaN in is the network's to report)
            if overflow.any():
                self._overflow(raw, overflow.any(axis=0), dtype)
        return out

    def _overflow(self, X, columns, dtype=None):
        """An InvalidValueError naming the inputs whose scaling overflowed (values near the float limits)."""
        columns = np.flatnonzero(np.atleast_1d(columns))
        names = self.feature_names or []
        shown = [names[j] if j < len(names) else f"input {j}" for j in columns[:5]] if self.kind != "image" else ["the pixels"]
        with np.errstate(invalid="ignore"):
            biggest = float(np.nanmax(np.abs(X))) if X.size else math.nan
        target = f" (as {np.dtype(dtype).name})" if dtype is not None else ""
        raise InvalidValueError(f"overflow in scaling {', '.join(map(str, shown))}: values as large as {biggest:.3g} "
                                f"overflow the scaling arithmetic{target}", expected="values well inside +/-1e300 (+/-3e38 for float32)",
                                got=f"{biggest:.3g}", fix="divide that column by a large power of ten (or take its log) "
                                "before training, or use --dtype float64")

    def scale_target(self, y) -> np.ndarray:
        """``(y - target_mean) / target_std`` (identity without target constants)."""
        y = np.asarray(y, dtype=np.float64)
        return (y - (self.target_mean or 0.0)) / (self.target_std or 1.0)

    def unscale_target(self, values) -> np.ndarray:
        """Network outputs back in the target's units: ``out * target_std + target_mean``."""
        values = np.asarray(values, dtype=np.float64)
        return values * (self.target_std or 1.0) + (self.target_mean or 0.0)

    def _names_hint(self):
        if not self.feature_names:
            return ""
        shown = ", ".join(self.feature_names[:8]) + (", ..." if len(self.feature_names) > 8 else "")
        return f" ({shown})"

    # ------------------------------------------------------------ the model file's JSON

    def to_config(self) -> dict:
        """The JSON object saved in the model file (the keys written since dialnet 0.1)."""
        config = {"version": self.version, "input": self.kind, "scaling": self.scaling}
        for key in _CONSTANTS[self.scaling]:
            if getattr(self, key) is not None:
                config[key] = _plain(getattr(self, key))
        if self.columns is not None:
            config["columns"] = [rule.to_config() for rule in self.columns]
        if self.feature_names is not None:
            config["feature_names"] = [str(f) for f in self.feature_names]
        if self.target is not None:
            config["target"] = str(self.target)
        if self.kind == "image" or self.image_size is not None:
            for key in ("image_size", "pixel_max", "background"):
                value = getattr(self, key)
                if value is not None:
                    config[key] = int(value) if key == "image_size" else value
        for key in ("target_mean", "target_std"):
            if getattr(self, key) is not None:
                config[key] = float(getattr(self, key))
        for key, value in self.extra.items():
            config.setdefault(key, value)
        return config

    @classmethod
    def from_config(cls, config, n_inputs=None, name="the model"):
        """Rebuild a Preprocessor from its saved JSON object, checking every field.

        Parameters
        ----------
        config : dict
        n_inputs : int, optional
            The network's input width: constants, column rules, feature
            names and the image size must fit it.
        name : str
            What to call the model in error messages (its path).

        Raises
        ------
        ModelFileError
            Not an object, an unknown kind or scaling, missing or non-finite
            constants, lists of the wrong length, malformed column rules, an
            image size that does not match the input width, a newer version.
        """

        def bad(what, expected, got):
            return ModelFileError(f"{name} has unusable preprocessing: {what}", expected=expected, got=str(got)[:80],
                                  fix="re-train and save the model with dialnet")

        def number(value):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        if not isinstance(config, Mapping):
            raise bad("not a JSON object", "an object", type(config).__name__)
        version = config.get("version", VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
            raise bad("its version is not one this dialnet reads", f"1..{VERSION} (a newer file needs a newer dialnet)", version)
        kind = config.get("input", "table")
        if kind not in KINDS:
            raise bad("unknown input kind", "'table' or 'image'", kind)
        scaling = config.get("scaling", "none")
        if scaling not in SCALINGS:
            raise bad("unknown scaling", " or ".join(SCALINGS), scaling)
        constants = {}
        for key in _CONSTANTS[scaling]:
            value = config.get(key)
            values = value if isinstance(value, list) else [value]
            if not all(number(v) for v in values):
                raise bad(f"{key!r} is not a list of finite numbers", "numbers", type(value).__name__)
            if isinstance(value, list) and kind == "table" and n_inputs is not None and len(value) != n_inputs:
                raise bad(f"{key!r} has {len(value)} values", f"{n_inputs} (one per input)", len(value))
            if isinstance(value, list) and kind == "image":
                raise bad(f"{key!r} is a list for an image model", "one number for all pixels", f"{len(value)} values")
            constants[key] = np.asarray(value, dtype=np.float64)
        if "std" in constants and (constants["std"] < 0).any():
            raise bad("'std' has a negative value", "standard deviations >= 0", float(constants["std"].min()))
        if "min" in constants and (constants["max"] < constants["min"]).any():
            raise bad("'max' is below 'min'", "max >= min for every input", "max < min")
        image = {}
        if kind == "image":
            size = config.get("image_size")
            if isinstance(size, bool) or not isinstance(size, int) or size < 1 or (n_inputs is not None and size * size != n_inputs):
                raise bad("the image size does not match the input width", f"size*size = {n_inputs}", size)
            image["image_size"] = size
            for key, low, high in (("pixel_max", 0.0, math.inf), ("background", 0.0, 1.0)):
                value = config.get(key)
                if value is not None and not (number(value) and (low < value if key == "pixel_max" else low <= value) and value <= high):
                    raise bad(f"{key!r} is out of range", "a number > 0" if key == "pixel_max" else "a number in [0, 1]", value)
                image[key] = value
        else:
            stray = [key for key in ("image_size", "pixel_max", "background") if key in config]
            if stray:
                raise bad(f"a table model has image settings ({', '.join(stray)})", "no image_size, pixel_max or background "
                          "for input 'table'", {k: config[k] for k in stray})
        columns = config.get("columns")
        if columns is not None:
            rules = [ColumnRule.from_config(c) for c in columns] if isinstance(columns, list) else [None]
            if any(rule is None for rule in rules):
                raise bad("'columns' is not a list of column rules", "numeric/categorical/dropped entries", columns)
            width = sum(rule.width for rule in rules)
            if n_inputs is not None and width != n_inputs:
                raise bad("the column rules do not match the input width", f"{n_inputs} inputs", f"{width}")
            columns = rules
        target_constants = {}
        for key in ("target_mean", "target_std"):
            value = config.get(key)
            if value is not None and not number(value):
                raise bad(f"{key!r} is not a finite number", "a number", value)
            if key == "target_std" and value is not None and value <= 0:
                raise bad("'target_std' is not positive", "a number > 0", value)
            target_constants[key] = None if value is None else float(value)
        names = config.get("feature_names")
        if names is not None and (not isinstance(names, list) or not all(isinstance(v, str) for v in names)
                                  or (n_inputs is not None and len(names) != n_inputs)):
            raise bad("feature_names do not match the input width", f"{n_inputs} names", names)
        target = config.get("target")
        if isinstance(target, bool) or (target is not None and not isinstance(target, (str, int))):
            raise bad("'target' is not a column name", "a string", target)
        used = {"version", "input", "scaling", *constants, "columns", "feature_names", "target", *image,
                "target_mean", "target_std"}
        extra = {k: v for k, v in config.items() if k not in used}  # kept as they are, and written back
        return cls(kind=kind, scaling=scaling, feature_names=names, target=None if target is None else str(target),
                   columns=columns, version=version, extra=extra, **image, **constants, **target_constants)

    # ------------------------------------------------------------ read like the saved JSON object

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        mine = self.to_config()
        return mine == (other.to_config() if isinstance(other, Preprocessor) else dict(other))

    __hash__ = None

    def __getitem__(self, key):
        return self.to_config()[key]

    def __iter__(self):
        return iter(self.to_config())

    def __len__(self):
        return len(self.to_config())

    def __repr__(self):
        parts = [f"kind={self.kind!r}", f"scaling={self.scaling!r}"]
        if self.n_inputs is not None:
            parts.append(f"n_inputs={self.n_inputs}")
        if self.columns:
            parts.append(f"columns={len(self.columns)}")
        if self.image_size:
            parts.append(f"image_size={self.image_size}")
        if self.target_mean is not None:
            parts.append("regression target")
        return f"Preprocessor({', '.join(parts)})"


def as_preprocessor(value, n_inputs=None, name="the model"):
    """What a network's ``preprocessing`` attribute holds, as a Preprocessor (None when it is empty).

    The attribute is a Preprocessor, None, or (set by hand, or a network
    that never had one) a plain JSON object, read by :meth:`Preprocessor.from_config`.
    """
    if value is None or isinstance(value, Preprocessor):
        return value
    if isinstance(value, Mapping) and not value:
        return None
    return Preprocessor.from_config(value, n_inputs, name)


def preprocessor_of(net):
    """A network's Preprocessor (its ``preprocessing`` attribute read by :func:`as_preprocessor`), or None."""
    return as_preprocessor(getattr(net, "preprocessing", None), net.n_inputs, "the network")


# ------------------------------------------------------------ the functions before the Preprocessor (kept working)


def fit_preprocessing(X, scaling="minmax", *, kind="table", image_size=None, feature_names=None, target=None,
                      background=None, columns=None) -> Preprocessor:
    """A fitted :class:`Preprocessor` for numeric training rows ``X`` (``columns``: rules ``X`` was encoded with)."""
    pre = Preprocessor(kind=kind, scaling=scaling, feature_names=feature_names, target=None if target is None else str(target),
                       image_size=image_size, background=None if background is None else float(background))
    if columns is not None:
        pre.columns = [ColumnRule.from_config(c) for c in columns]
        pre.feature_names = [name for rule in pre.columns for name in rule.feature_names]
    return pre.fit(X)


def apply_preprocessing(pre: Preprocessor, X, dtype=np.float32) -> np.ndarray:
    """``pre.transform(X, dtype)``: raw inputs (or a table's text cells) -> network inputs."""
    if not isinstance(pre, Preprocessor):
        raise ConfigError("apply_preprocessing takes a Preprocessor", expected="a dialnet Preprocessor",
                          got=type(pre).__name__, fix="call net.preprocessing.transform(X), or "
                          "Preprocessor.from_config(config).transform(X) for a saved JSON object")
    return pre.transform(X, dtype)


def validate_preprocessing(config, n_inputs, name="the model") -> Preprocessor | None:
    """``Preprocessor.from_config(config, n_inputs, name)``; None for an empty config."""
    return as_preprocessor(config, n_inputs, name)


def fit_columns(cells, names, max_categories=MAX_CATEGORIES, where="the table"):
    """Column rules for a table's training cells, in their saved form: ``(list of dict, notes)``."""
    rules, notes = fit_column_rules(cells, names, max_categories, where)
    return [rule.to_config() for rule in rules], notes


def encode_columns(columns, cells):
    """Text cells -> ``(float64 inputs, cells imputed)`` by column rules in their saved form."""
    return Preprocessor(columns=[ColumnRule.from_config(c) for c in columns]).encode(cells)


def encoded_names(columns):
    """Input names after encoding: ``age``, ``color=red``, ``color=(other)``, ..."""
    return [name for c in columns for name in column_feature_names(c)]


def column_feature_names(column):
    """The input names one column rule (saved form) turns into."""
    return ColumnRule.from_config(column).feature_names
