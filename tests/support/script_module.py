"""A script under ``scripts/`` as a module: they are run as files, not imported as a package."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support.paths import ROOT


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """``scripts/<name>.py`` executed as module ``module_name`` (default ``name``), registered in
    ``sys.modules`` so its dataclasses can look their module up."""
    module_name = module_name or name
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
