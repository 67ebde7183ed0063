# shoal compat shim -- installed by tests/compat/run as
# <overlay>/ipyparallel/controller/__main__.py (replacing the stock file).
#
# Every code path of the ipyparallel 7.1 test suite starts the controller as
# `sys.executable -m ipyparallel.controller ARGS...`; with the overlay first
# on PYTHONPATH that lands here.  If SHOAL_CONTROLLER names a binary, replace
# this process with it (same pid, same environment, argv[1:] unchanged).
# Otherwise fall back to the stock controller, so the same overlay runs the
# stock baseline.
SHOAL_COMPAT_SHIM = "controller"

if __name__ == '__main__':
    import os
    import sys

    exe = os.environ.get('SHOAL_CONTROLLER')
    if exe:
        try:
            os.execv(exe, [exe] + sys.argv[1:])
        except OSError as e:
            print(f"shoal compat shim: cannot exec SHOAL_CONTROLLER={exe!r}: {e}",
                  file=sys.stderr)
            sys.exit(127)

    from .app import main

    main()
