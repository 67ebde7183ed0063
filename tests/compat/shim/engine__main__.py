# shoal compat shim -- installed by tests/compat/run as
# <overlay>/ipyparallel/engine/__main__.py (replacing the stock file).
#
# Every code path of the ipyparallel 7.1 test suite starts an engine as
# `sys.executable -m ipyparallel.engine ARGS...`; with the overlay first
# on PYTHONPATH that lands here.  If SHOAL_ENGINE names a binary, replace
# this process with it (same pid, same environment, argv[1:] unchanged).
# Otherwise fall back to the stock engine, so the same overlay runs the
# stock baseline.
SHOAL_COMPAT_SHIM = "engine"

if __name__ == '__main__':
    import os
    import sys

    exe = os.environ.get('SHOAL_ENGINE')
    if exe:
        try:
            os.execv(exe, [exe] + sys.argv[1:])
        except OSError as e:
            print(f"shoal compat shim: cannot exec SHOAL_ENGINE={exe!r}: {e}",
                  file=sys.stderr)
            sys.exit(127)

    from .app import main

    main()
