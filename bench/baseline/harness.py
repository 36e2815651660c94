"""Runs one of handlers.py's functions as a Lambda would: a cold start (interpreter,
imports, clients) and then warm calls in the same process.

Usage: python3 harness.py FUNCTION EVENT.json CALLS

Prints `first` as soon as the first call returned (the caller timestamps it: process
start to first response = the cold start), then one JSON line: the duration of every
call in milliseconds, the import time, the last result and the peak RSS (VmHWM, KiB).
"""
import json
import sys
import time

started = time.perf_counter()
import handlers  # noqa: E402  (the import is part of the cold start)

imported = time.perf_counter()


def peak_rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    function = getattr(handlers, sys.argv[1])
    with open(sys.argv[2]) as f:
        event = json.load(f)
    calls = int(sys.argv[3])
    durations = []
    result = None
    for i in range(calls):
        t = time.perf_counter()
        result = function(event, None)
        durations.append((time.perf_counter() - t) * 1000.0)
        if i == 0:
            print("first", flush=True)
    print(json.dumps({
        "import_ms": (imported - started) * 1000.0,
        "calls_ms": durations,
        "result": result,
        "vmhwm_kib": peak_rss_kib(),
    }), flush=True)


main()
