"""Small functions shoal's client runs on engines (push, pull, map chunks).

Engines import this module by reference (it ships with shoal's Python package), so it must
stay cheap to import: no IPython, numpy or client imports at module level.
"""

import pickle

from shoal.serialize import adopt_function

# Mapped functions arrive pickled once per map call; the same bytes come with every chunk.
_FUNCTIONS = {}
_FUNCTIONS_MAX = 32


def user_ns():
    """The engine's user namespace (``get_ipython().user_ns``), else ``__main__``'s."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:  # pragma: no cover - engines always have IPython
        shell = None
    if shell is None:
        import __main__
        return __main__.__dict__
    return shell.user_ns


def push(ns):
    """Assign every ``name: value`` of ``ns`` in the user namespace (dotted names too)."""
    target = user_ns()
    for name, value in ns.items():
        if name.isidentifier():
            target[name] = value
        else:  # "a.b", "x[0]": an assignment target, as IPython Parallel allows
            tmp = "_shoal_push_tmp_"
            target[tmp] = value
            try:
                exec(f"{name} = {tmp}", target)
            finally:
                target.pop(tmp, None)


def pull(names):
    """The value of each expression in ``names`` (a str, or a list/tuple/set of str)."""
    ns = user_ns()
    if isinstance(names, str):
        return _lookup(names, ns)
    return [_lookup(n, ns) for n in names]


def pull_float64(name):
    """The value of ``name`` as the bytes of a flat float64 array (what C++ clients pull:
    include/shoal/arrays.h)."""
    import numpy

    value = numpy.ascontiguousarray(_lookup(name, user_ns()), dtype=numpy.float64)
    return value.reshape(-1).tobytes()


def _lookup(name, ns):
    if name.isidentifier():
        try:
            return ns[name]
        except KeyError:
            raise NameError(f"name {name!r} is not defined") from None
    return eval(name, ns)


def _function(pickled):
    f = _FUNCTIONS.get(pickled)
    if f is None:
        f = pickle.loads(pickled)
        if len(_FUNCTIONS) >= _FUNCTIONS_MAX:
            _FUNCTIONS.clear()
        _FUNCTIONS[pickled] = f
    # Adopted on every call: the namespace may have been cleared since.
    return adopt_function(f, user_ns())


def map_chunk(pickled_f, *sequences):
    """``list(map(f, *sequences))`` for a function pickled by the client."""
    return list(map(_function(pickled_f), *sequences))


# -- arguments resolved on the engine ------------------------------------------------------


def resolve_reference(name):
    """The value of ``name`` (an expression) in the engine's user namespace."""
    return _lookup(name, user_ns())


class Reference:
    """An argument that stands for ``name`` in the engine's namespace: the engine passes
    the value it has under that name (IPython Parallel's ``Reference``)::

        view.push({'a': 5}); view.apply(f, shoal.Reference('a'))   # f(5) on each engine
    """

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError("illegal name: %r" % (name,))
        self.name = name

    def __repr__(self):
        return "<Reference: %r>" % self.name

    def __reduce__(self):
        # Unpickled on the engine as the value itself.
        return resolve_reference, (self.name,)


# -- functional dependencies ---------------------------------------------------------------


def _unmet(reason=None):
    from shoal.error import UnmetDependency
    return UnmetDependency(reason) if reason is not None else UnmetDependency()


class dependent:  # noqa: N801 - IPython Parallel's name
    """``f`` that runs only where ``df(*dargs, **dkwargs)`` is not False (``@depend``).

    Otherwise it raises ``UnmetDependency`` before ``f`` runs, and the task scheduler
    tries another engine; when no engine qualifies the task fails with
    ``ImpossibleDependency``. A class, not a closure, so that it pickles by reference.
    """

    def __init__(self, _wrapped_f, _wrapped_df, *dargs, **dkwargs):
        self.f = _wrapped_f
        self.__name__ = getattr(_wrapped_f, "__name__", "f")
        self.df = _wrapped_df
        self.dargs = dargs
        self.dkwargs = dkwargs

    def check_dependency(self):
        ns = user_ns()
        if adopt_function(self.df, ns)(*self.dargs, **self.dkwargs) is False:
            raise _unmet()

    def __call__(self, *args, **kwargs):
        self.check_dependency()
        return adopt_function(self.f, user_ns())(*args, **kwargs)


def require_check(*modules, **mapping):
    """The test of ``@require``: import ``modules`` into the user namespace (an
    ``UnmetDependency`` naming the first that will not import) and put ``mapping`` there."""
    ns = user_ns()
    for name in modules:
        try:
            exec("import %s" % name, ns)
        except ImportError:
            raise _unmet(name) from None
    for name, obj in mapping.items():
        ns[name] = adopt_function(obj, ns)
    return True


# -- sync_imports --------------------------------------------------------------------------


def remote_import(name, fromlist, level):
    """``import name`` / ``from name import *fromlist`` into the user namespace."""
    import sys
    ns = user_ns()
    module = __import__(name, ns, ns, fromlist or (), level)
    if fromlist:
        for key in fromlist:
            ns[key] = getattr(module, key)
    else:
        top = name.split(".")[0]
        ns[top] = sys.modules[top]
