#!/usr/bin/env bash
# Runs the CloudFormation/packaging/scripts tests (plain unittest, no pytest needed)
# and prints "N passed, N failed, N skipped" as its last line. Needs the tools of
# tests/requirements.txt (python3 -m pip install -r tests/requirements.txt), shellcheck
# and PyYAML; a missing one FAILS its tests with how to install it, unless
# EKS_CANARY_ALLOW_MISSING_PEERS names it (those tests then print "NOT RUN" and count as
# skipped). Exit status: 0 when nothing failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python3 - "$@" <<'PY'
import sys, unittest

class Result(unittest.TextTestResult):
    """Remembers which tests passed, so that a failing setUpClass (not a test of its own)
    cannot turn into a passed count."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed_ids = set()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed_ids.add(test.id())

loader = unittest.TestLoader()
names = sys.argv[1:]
suite = loader.loadTestsFromNames(names) if names else loader.discover(".", pattern="test_*.py", top_level_dir=".")
result = unittest.TextTestRunner(verbosity=1, stream=sys.stderr, resultclass=Result).run(suite)
def test_id(t):
    # a failing subTest reports as its own case: count the test it belongs to, once
    return getattr(t, "test_case", t).id()

failed_ids = {test_id(t) for t, _ in result.failures + result.errors} | {t.id() for t in result.unexpectedSuccesses}
skipped_ids = {test_id(t) for t, _ in result.skipped}
for t, reason in result.skipped:
    print(f"skipped {test_id(t)}: {reason}", file=sys.stderr)
passed = len(result.passed_ids - failed_ids - skipped_ids)
print(f"{passed} passed, {len(failed_ids)} failed, {len(skipped_ids)} skipped")
sys.exit(1 if failed_ids else 0)
PY
