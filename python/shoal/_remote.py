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
