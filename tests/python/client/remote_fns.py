"""Functions the client tests run on engines. The engines cannot import the tests, so the
test modules register this module (and themselves) with cloudpickle to ship by value."""


def engine_pid():
    import os
    return os.getpid()


def slow(seconds, value=None):
    import time
    time.sleep(seconds)
    return value
