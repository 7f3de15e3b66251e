"""Start-up: ``import dialnet`` and ``dialnet --help`` load only what the call uses (issue 17).

No timing here (a shared machine makes it noise): each test runs a fresh
interpreter and checks which modules it loaded. ``python -m
benchmarks.startup`` measures the seconds.
"""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

import dialnet

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
INIT = SRC / "dialnet" / "__init__.py"
HEAVY = ("numpy", "rich", "scipy", "torch", "sklearn", "matplotlib", "onnx", "mpi4py", "cupy")

# the public names before they were loaded lazily: the set must not shrink by accident
PUBLIC = {
    "__version__", "backend", "data", "datasets", "preprocessing", "plots", "workflow", "Preprocessor", "Recipe",
    "cross_validate", "evaluate_model", "model_data", "model_inputs", "prepare_data", "regression_metrics",
    "train_model", "inspect", "trace", "BinaryCrossEntropy", "Callback", "CSVLogger", "LBFGS",
    "LearningRateScheduler", "ModelCheckpoint", "ConfigError", "CosineLR", "CrossEntropy", "DataError", "Dense",
    "DialnetError", "DivergenceError", "DivergenceWarning", "TrainingInterrupted", "DoctorCallback", "Dropout",
    "EarlyStopping", "ExponentialLR", "History", "Identity", "InvalidValueError", "LeakyReLU", "MSE",
    "ModelFileError", "Network", "ReLU", "RMSprop", "ReduceLROnPlateau", "SGD", "Adam", "AdamW", "ShapeError",
    "Sigmoid", "Softmax", "StepLR", "Tanh", "export_onnx", "from_torch_state_dict", "from_torch_sequential",
    "doctor", "gradcheck", "load", "mlp",
}


def loaded_after(code):
    """The modules a fresh interpreter holds after running ``code``: (dialnet's, the heavy ones), and its stdout."""
    script = (
        "import sys, json\n"
        f"{code}\n"
        "mods = sorted(sys.modules)\n"
        f"heavy = sorted(m for m in mods if m.split('.')[0] in {HEAVY!r})\n"
        "print('\\n@@' + json.dumps([[m for m in mods if m.split('.')[0] == 'dialnet'], heavy]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text, _, tail = out.stdout.rpartition("\n@@")
    ours, heavy = json.loads(tail)
    return ours, heavy, text


def run_cli(argv):
    return (
        "from dialnet.cli import main\n"
        "try:\n"
        f"    code = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "assert code in (0, None), code\n"
    )


def test_import_dialnet_loads_only_the_package():
    ours, heavy, _ = loaded_after("import dialnet")
    assert ours == ["dialnet", "dialnet._version"]
    assert heavy == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["train", "--help"], ["predict", "--help"],
                                  ["explore", "--help"], ["doctor", "--help"]], ids=" ".join)
def test_help_loads_neither_numpy_nor_rich_nor_the_library(argv):
    ours, heavy, text = loaded_after(run_cli(argv))
    assert heavy == [], f"dialnet {' '.join(argv)} imported {heavy}"
    library = [m for m in ours if m not in ("dialnet", "dialnet._version") and not m.startswith("dialnet.cli")]
    assert library == [], f"dialnet {' '.join(argv)} imported {library}"
    assert text.strip(), "printed nothing"


@pytest.mark.parametrize("command", ["--help", "train --help"])
def test_every_command_help_as_python_m_dialnet(command):
    """``python -m dialnet`` (dialnet/__main__.py) is as light as the script, and shows every command."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['dialnet'] + {command.split()!r}\n"
            "try:\n    runpy.run_module('dialnet', run_name='__main__')\nexcept SystemExit as exc:\n"
            "    assert exc.code in (0, None), exc.code\n")
    ours, heavy, text = loaded_after(code)
    assert heavy == []
    assert not any(m.startswith(("dialnet.core", "dialnet.train", "dialnet.model", "dialnet.data")) for m in ours)
    if command == "--help":
        from dialnet.cli import COMMANDS
        assert all(name in text for name in COMMANDS)


def test_a_name_loads_what_it_needs_and_works():
    ours, heavy, text = loaded_after(
        "import dialnet, numpy as np\n"
        "net = dialnet.mlp([3, 4, 2], seed=0)\n"
        "print(net.predict(np.ones((5, 3), dtype=np.float32)).shape)\n")
    assert "(5,)" in text  # one class label a row
    assert "dialnet.model" in ours and "dialnet.core.network" in ours
    assert "numpy" in heavy and not any(m.split(".")[0] == "rich" for m in heavy)
    assert "dialnet.explore" not in ours and "dialnet.sklearn" not in ours  # what mlp does not need stays out


def test_from_import_and_errors_load_lazily():
    ours, heavy, _ = loaded_after("from dialnet import DialnetError, mlp\nimport dialnet\n"
                                  "assert issubclass(dialnet.ConfigError, DialnetError)\n"
                                  "assert dialnet.errors.DataError is dialnet.DataError\n")
    assert "dialnet.errors" in ours and "dialnet.model" in ours


def test_every_public_name_resolves_and_all_is_unchanged():
    assert set(dialnet.__all__) == PUBLIC
    assert len(dialnet.__all__) == len(PUBLIC)
    for name in dialnet.__all__:
        assert getattr(dialnet, name) is not None, name
    assert set(dialnet.__all__) <= set(dir(dialnet))
    namespace = {}
    exec("from dialnet import *", namespace)  # noqa: S102
    assert PUBLIC <= set(namespace)


def test_the_aliases_are_the_modules_they_were():
    import dialnet.data.preprocessing
    import dialnet.diagnose.plots
    import dialnet.diagnose.trace

    assert dialnet.datasets is dialnet.data
    assert dialnet.preprocessing is dialnet.data.preprocessing
    assert dialnet.plots is dialnet.diagnose.plots
    assert dialnet.inspect is dialnet.diagnose.trace and dialnet.trace is dialnet.diagnose.trace.trace
    assert dialnet.Network.__module__.startswith("dialnet.")


def test_sub_packages_load_on_access_and_unknown_names_fail_as_before():
    assert dialnet.core.__name__ == "dialnet.core"
    assert dialnet.files.__name__ == "dialnet.files"
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        dialnet.no_such_thing  # noqa: B018
    assert not hasattr(dialnet, "__no_such_dunder__")
    assert hasattr(dialnet, "mlp")


def _type_checking_imports():
    """``{name: (module, attribute or None)}`` from the ``if TYPE_CHECKING:`` block of dialnet/__init__.py."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    blocks = [s for s in tree.body if isinstance(s, ast.If) and isinstance(s.test, ast.Name) and s.test.id == "TYPE_CHECKING"]
    assert len(blocks) == 1
    found = {}
    for node in blocks[0].body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, ast.unparse(node)
            stem = "dialnet" + (f".{node.module}" if node.module else "")
            for alias in node.names:
                path = SRC.joinpath(*f"{stem}.{alias.name}".split("."))
                is_module = path.with_suffix(".py").exists() or (path / "__init__.py").exists()
                found[alias.asname or alias.name] = (f"{stem}.{alias.name}", None) if is_module else (stem, alias.name)
        elif isinstance(node, ast.Assign):  # datasets = data
            (target,) = node.targets
            found[target.id] = found[node.value.id]
        else:
            raise AssertionError(f"unexpected statement in the TYPE_CHECKING block: {ast.unparse(node)}")
    return found


def test_the_lazy_table_is_what_the_type_checking_block_imports():
    """The layering test reads the package's edges from the TYPE_CHECKING imports (a lazy table is strings):
    they must be exactly the modules that ``__getattr__`` loads, so an upward import or a cycle through
    dialnet/__init__.py is still seen."""
    assert _type_checking_imports() == dialnet._LAZY
    assert set(dialnet.__all__) - {"__version__"} <= set(dialnet._LAZY)


def test_the_layering_test_sees_the_package_edges():
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    try:
        import test_layering
    finally:
        sys.path.pop(0)
    edges = {t for m, t, _line, top in test_layering.IMPORTS if m == "dialnet" and top}
    assert {module for module, _attr in dialnet._LAZY.values()} <= edges | {"dialnet"}
