"""The Python half of ``shoal-engine``.

The C++ engine host embeds CPython, imports :mod:`shoal._engine.runtime` and drives one
:class:`~shoal._engine.runtime.EngineRuntime` from its main thread (``docs/engine.md``).
Nothing here touches sockets: every iopub message goes through ``host.publish``.
"""
