"""The public names of django_dataflow, its typing marker and a cheap, model-free import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import django_dataflow
from django_dataflow import exceptions

ROOT = Path(__file__).resolve().parent.parent


def test_all_names_resolve() -> None:
    assert len(django_dataflow.__all__) == len(set(django_dataflow.__all__))
    for name in django_dataflow.__all__:
        assert getattr(django_dataflow, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from django_dataflow import *", namespace)
    assert set(django_dataflow.__all__) <= set(namespace)


def test_design_contract_names_are_public() -> None:
    for name in ("WorkflowBuilder", "LocalRuntime", "QueryBuilder", "Workflow", "register",
                 "DataflowError", "WorkflowValidationError", "NodeExecutionError", "RecordNotFound",
                 "PermissionDenied"):
        assert name in django_dataflow.__all__
        assert name in dir(django_dataflow)


def test_public_names_are_the_real_objects() -> None:
    from django_dataflow.registry import register
    from django_dataflow.runtime.local import LocalRuntime
    from django_dataflow.workflow import Workflow
    from django_dataflow.workflow.builder import WorkflowBuilder

    assert django_dataflow.LocalRuntime is LocalRuntime
    assert django_dataflow.WorkflowBuilder is WorkflowBuilder
    assert django_dataflow.Workflow is Workflow
    assert django_dataflow.register is register
    assert django_dataflow.WorkflowValidationError is exceptions.WorkflowValidationError


def test_every_error_derives_from_dataflow_error() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.DataflowError), name
    assert issubclass(exceptions.WorkflowValidationError, ValueError)
    assert issubclass(exceptions.RecordNotFound, exceptions.NodeExecutionError)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        django_dataflow.Nope  # noqa: B018


def test_version() -> None:
    assert isinstance(django_dataflow.__version__, str)
    assert django_dataflow.__version__.count(".") >= 2


def test_py_typed_marker_exists() -> None:
    marker = Path(django_dataflow.__file__).parent / "py.typed"
    assert marker.is_file()


def test_py_typed_is_packaged() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "py.typed" in pyproject


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_does_not_import_models_before_setup() -> None:
    code = (
        "import sys\n"
        "import django_dataflow\n"
        "assert 'django_dataflow.models' not in sys.modules, 'models imported'\n"
        "assert 'django.contrib.auth.models' not in sys.modules, 'auth models imported'\n"
        "import django\n"
        "django.setup()\n"
        "from django_dataflow.registry import get_node_class\n"
        "print('after setup:', 'django_dataflow.models' in sys.modules,\n"
        "      get_node_class('ProductCreateNode').__name__)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "after setup: True ProductCreateNode" in result.stdout


def test_import_works_without_configured_settings() -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('DJANGO_SETTINGS_MODULE', None)\n"
        "import django_dataflow\n"
        "print('WorkflowBuilder' in django_dataflow.__all__, 'django_dataflow.models' in sys.modules)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True False"
