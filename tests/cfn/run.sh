#!/usr/bin/env bash
# Runs the CloudFormation/packaging/scripts tests (plain unittest, no pytest needed)
# and prints "N passed, N failed, N skipped". Needs: python3, cfn-lint, moto[server]
# (moto_server), boto3, PyYAML (cfn-lint brings it); shellcheck and the aws CLI are
# used when present. Exit status: 0 when nothing failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python3 - "$@" <<'PY'
import sys, unittest

loader = unittest.TestLoader()
names = sys.argv[1:]
suite = loader.loadTestsFromNames(names) if names else loader.discover(".", pattern="test_*.py", top_level_dir=".")
result = unittest.TextTestRunner(verbosity=1, stream=sys.stderr).run(suite)
def test_id(t):
    # a failing subTest reports as its own case: count the test it belongs to, once
    return getattr(t, "test_case", t).id()

failed = len({test_id(t) for t, _ in result.failures + result.errors} | {t.id() for t in result.unexpectedSuccesses})
skipped = len({test_id(t) for t, _ in result.skipped})
passed = result.testsRun - failed - skipped
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
