"""How our dynamic providers load in Pulumi's provider host, however `pulumi` was started.

Pulumi pickles a dynamic resource's provider (dill, ``serialize_provider`` in
pulumi/dynamic/dynamic.py) into the resource's inputs; its provider host (``python -m pulumi.dynamic``,
pulumi/dynamic/__main__.py ``get_provider``) unpickles it before every call. dill pickles an
instance of a class from an importable module by reference (``infra.edge._MigrationsProvider``), so
unpickling imports that module. The engine starts the host in the program's directory, ``infra/``,
which ``-m`` puts first on ``sys.path``: the repository root, where ``infra`` and ``worker`` live, is
not on it. Only a ``PYTHONPATH`` naming the root made them import: scripts/bootstrap_env.sh exports
one, which is why the local stack's provider loaded, and a plain ``pulumi up --stack dev`` has none
(the host failed with "No module named 'infra'").

The rule, for every dynamic provider in ``infra/``: decorate its class with :func:`loadable`. An
instance then pickles as a call to :data:`load` with the class's module, name and attributes. dill
pickles ``load`` by value (its code travels in the state), so the host can run it before anything
of ours is importable: it puts the repository root on ``sys.path`` (found from the host's working
directory, the program directory, upwards), then imports the class and rebuilds the instance.
tests/integration/test_dynamic_providers.py runs both providers in the real host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

P = TypeVar("P")


def _make_load() -> Callable[[str, str, dict[str, Any]], Any]:
    # defined in a closure: dill pickles a function it cannot find as ``<module>.<name>`` by value,
    # and this one must be, since its module is what it makes importable
    def load_provider(module: str, qualname: str, attributes: dict[str, Any]) -> Any:
        import importlib
        import os
        import sys

        package = module.split(".", 1)[0]
        here = os.getcwd()
        while True:
            if os.path.isfile(os.path.join(here, package, "__init__.py")):
                if here in sys.path:
                    sys.path.remove(here)
                sys.path.insert(0, here)
                break
            parent = os.path.dirname(here)
            if parent == here:  # not found upwards: the package must already be importable
                break
            here = parent
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        provider = cls.__new__(cls)
        provider.__dict__.update(attributes)
        return provider

    return load_provider


#: rebuilds a :func:`loadable` provider in the provider host (pickled by value, see the module doc)
load = _make_load()


def loadable(cls: type[P]) -> type[P]:
    """Make a ``ResourceProvider`` class pickle as a call to :data:`load` (the module's rule)."""

    def __reduce__(self: Any) -> tuple[Any, tuple[str, str, dict[str, Any]]]:
        return load, (type(self).__module__, type(self).__qualname__, dict(vars(self)))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls
