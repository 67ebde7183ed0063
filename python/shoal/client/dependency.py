"""Dependencies of load-balanced tasks (IPython Parallel's ``Dependency``, ``@depend``,
``@require``).

*Graph* dependencies (``after``/``follow`` flags) name msg_ids; the controller's scheduler
holds a task until they are met. *Functional* dependencies run a test on the engine first
(:class:`shoal._remote.dependent`): if it fails the engine answers ``UnmetDependency`` and
the scheduler tries another engine, failing the task with ``ImpossibleDependency`` when
none is left.
"""

from types import ModuleType

from shoal._remote import dependent, require_check
from shoal.client.asyncresult import AsyncResult

__all__ = ["Dependency", "depend", "require", "dependent"]


class depend:  # noqa: N801 - IPython Parallel's name
    """``@depend(df, *args, **kwargs)``: run the task only on an engine where
    ``df(*args, **kwargs)`` does not return False (nor raise UnmetDependency)."""

    def __init__(self, _wrapped_f, *args, **kwargs):
        self.f = _wrapped_f
        self.args = args
        self.kwargs = kwargs

    def __call__(self, f):
        return dependent(f, self.f, *self.args, **self.kwargs)


def require(*objects, **mapping):
    """``@require('numpy', helper, k=v)``: before the task runs, import the modules (by
    name or module object) and define the functions (under their ``__name__``) and
    keyword objects in the engine's namespace. An engine where an import fails does not
    run it (``UnmetDependency``)."""
    names = []
    for obj in objects:
        if isinstance(obj, ModuleType):
            obj = obj.__name__
        if isinstance(obj, str):
            names.append(obj)
        elif hasattr(obj, "__name__"):
            mapping[obj.__name__] = obj
        else:
            raise TypeError("Objects other than modules and functions must be passed by "
                            "kwarg, but got: %s" % type(obj))
    return depend(require_check, *names, **mapping)


class Dependency(set):
    """A set of msg_ids a task depends on, for ``after``/``follow``.

    ``all``: met when all (else any) of them are; ``success`` / ``failure``: whether a
    successful / failed task counts as met. With the defaults (all, success only) one
    failure makes the dependency impossible and the task fails with
    ``ImpossibleDependency``.
    """

    all = True
    success = True
    failure = False

    def __init__(self, dependencies=(), all=True, success=True, failure=False):  # noqa: A002
        if isinstance(dependencies, dict):  # as_dict() output
            all = dependencies.get("all", True)
            success = dependencies.get("success", success)
            failure = dependencies.get("failure", failure)
            dependencies = dependencies.get("dependencies", [])
        if isinstance(dependencies, (str, AsyncResult)):
            dependencies = [dependencies]
        ids = []
        for d in dependencies:
            if isinstance(d, str):
                ids.append(d)
            elif isinstance(d, AsyncResult):
                ids.extend(d.msg_ids)
            else:
                raise TypeError("invalid dependency type: %r" % type(d))
        super().__init__(ids)
        if not (success or failure):
            raise ValueError("Must depend on at least one of successes or failures!")
        self.all = all
        self.success = success
        self.failure = failure

    def check(self, completed, failed=None):
        """Whether the dependency is met, given sets of completed and failed msg_ids."""
        if not self:
            return True
        against = set(completed) if self.success else set()
        if failed is not None and self.failure:
            against |= set(failed)
        return self.issubset(against) if self.all else not self.isdisjoint(against)

    def unreachable(self, completed, failed=None):
        """Whether the dependency can no longer be met."""
        if not self:
            return False
        against = set(completed) if not self.success else set()
        if failed is not None and not self.failure:
            against |= set(failed)
        return not self.isdisjoint(against) if self.all else self.issubset(against)

    def as_dict(self):
        """The JSON form the scheduler reads."""
        return {"dependencies": list(self), "all": self.all, "success": self.success,
                "failure": self.failure}
