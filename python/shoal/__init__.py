"""shoal: a C++ reimplementation of IPython Parallel, wire-compatible with ipyparallel 7.1.

This package holds shoal's Python pieces: the payload format (:mod:`shoal.serialize`) and
the Python half of ``shoal-engine`` (:mod:`shoal._engine`). Importing it is cheap on
purpose (no IPython or numpy), because the engine host and clients import it at start-up.
"""

# Built extension modules (shoal._core) may live in another `shoal` directory on sys.path,
# e.g. <build>/python/shoal next to <repo>/python/shoal during development.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
