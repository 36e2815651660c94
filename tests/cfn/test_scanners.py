"""The security scanners over cloudformation/: checkov and cfn-lint with the serverless
rules (cfn-lint-serverless). Every finding is either fixed in the template or skipped in
the template itself with a one-line reason beside the skip; anything else fails here with
the check's id, the resource and the file.

checkov pins boto3 to a version older than the one tests/requirements.txt pins, so it
lives in its own virtual environment, .tools/checkov, installed from
tests/requirements-checkov.txt by scripts/checkov (scripts/test runs it)."""

import json
import re
import shutil
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402

CHECKOV = common.ROOT / ".tools" / "checkov" / "bin" / "checkov"
CHECKOV_INSTALL = "scripts/checkov --install (a venv in .tools/checkov from tests/requirements-checkov.txt)"
# checkov's text when a skip carries no comment of its own.
CHECKOV_NO_COMMENT = "No comment provided"


def run_checkov() -> list[dict]:
    """checkov's JSON report over cloudformation/, one dict per framework it ran."""
    common.require_peer("checkov", CHECKOV.exists(), CHECKOV_INSTALL)
    r = common.run(
        [
            str(CHECKOV),
            "--directory", str(common.CFN_DIR),
            "--framework", "cloudformation",
            "--output", "json",
            # no call to the vendor's platform: the checks are those of the pinned release
            "--skip-download",
        ],
        env={**common.env_without_aws_secrets(), "BC_SKIP_MAPPING": "TRUE"},
    )
    # exit 1 means "failed checks", which the test reports below; anything else is a crash
    if r.returncode not in (0, 1):
        raise AssertionError(f"checkov exited {r.returncode}:\n{r.stderr[-3000:]}")
    report = json.loads(r.stdout)
    return report if isinstance(report, list) else [report]


def where(check: dict) -> str:
    lines = check.get("file_line_range") or ["?", "?"]
    return f"{check['check_id']} on {check['resource']} in cloudformation{check['file_path']}:{lines[0]}-{lines[1]}"


class Checkov(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reports = run_checkov()
        cls.results = {"passed_checks": [], "failed_checks": [], "skipped_checks": []}
        for report in cls.reports:
            for kind in cls.results:
                cls.results[kind].extend(report.get("results", {}).get(kind, []))

    def test_checkov_scanned_every_template(self):
        # every resource of every template was read (cluster-access.yaml has only access
        # entries, which no check covers, so it shows in the count, not in the results)
        resources = sum(len(common.load(p)["Resources"]) for p in common.cfn_templates())
        self.assertEqual(sum(r["summary"]["resource_count"] for r in self.reports), resources)
        scanned = {c["file_path"].lstrip("/") for kind in self.results.values() for c in kind}
        for name in ("artifacts-bucket.yaml", "shared.yaml", "pipeline.yaml"):
            self.assertIn(name, scanned, f"checkov did not scan {name}")
        self.assertGreater(len(self.results["passed_checks"]), 100)
        for report in self.reports:
            self.assertEqual(report["summary"].get("parsing_errors", 0), 0, report["summary"])

    def test_no_check_fails(self):
        failed = [f"{where(c)}: {c['check_name']}" for c in self.results["failed_checks"]]
        self.assertEqual(
            failed,
            [],
            "checkov findings that are neither fixed nor skipped with a reason in the template "
            "(Metadata: checkov: skip: [{id: ..., comment: ...}]):\n" + "\n".join(failed),
        )

    def test_every_skip_gives_a_one_line_reason(self):
        self.assertGreater(len(self.results["skipped_checks"]), 0)
        for c in self.results["skipped_checks"]:
            comment = (c.get("check_result") or {}).get("suppress_comment", "")
            with self.subTest(check=where(c)):
                self.assertNotEqual(comment.strip(), CHECKOV_NO_COMMENT, f"{where(c)} is skipped without a reason")
                self.assertGreaterEqual(len(comment.split()), 6, f"{where(c)}: `{comment}` is not a reason")
                self.assertNotIn("\n", comment.strip())


class ServerlessRules(unittest.TestCase):
    def test_cfn_lint_with_the_serverless_rules_finds_nothing(self):
        exe = shutil.which("cfn-lint")
        common.require_peer("cfn-lint", exe, f"{common.PIP_REQUIREMENTS} (cfn-lint)")
        try:
            import cfn_lint_serverless  # noqa: F401
        except ImportError:
            common.require_peer("cfn-lint-serverless", False, f"{common.PIP_REQUIREMENTS} (cfn-lint-serverless)")
        for path in common.cfn_templates():
            with self.subTest(template=path.name):
                r = common.run([exe, "--append-rules", "cfn_lint_serverless.rules", "--include-checks", "I", "--", str(path)])
                self.assertEqual(
                    (r.returncode, r.stdout.strip()),
                    (0, ""),
                    f"cfn-lint -a cfn_lint_serverless.rules on {path.name} (fix it, or ignore the check on "
                    f"the resource under Metadata: cfn-lint: config: ignore_checks with a # reason):\n{r.stdout}{r.stderr}",
                )

    def test_the_serverless_rules_are_really_loaded(self):
        # A template made to break one serverless rule (an EventBridge target without a
        # dead-letter queue) must be reported: otherwise "nothing found" proves nothing.
        exe = shutil.which("cfn-lint")
        common.require_peer("cfn-lint", exe, f"{common.PIP_REQUIREMENTS} (cfn-lint)")
        import tempfile

        bad = (
            'AWSTemplateFormatVersion: "2010-09-09"\nResources:\n  Rule:\n    Type: AWS::Events::Rule\n'
            "    Properties:\n      ScheduleExpression: rate(1 hour)\n      Targets:\n"
            "        - Id: t\n          Arn: arn:aws:sqs:us-east-1:123456789012:q\n"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(bad)
            f.flush()
            r = common.run([exe, "--append-rules", "cfn_lint_serverless.rules", "--", f.name])
        self.assertIn("ES4000", r.stdout, r.stdout + r.stderr)

    def test_every_ignored_serverless_rule_has_a_reason(self):
        for path in common.cfn_templates():
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                if re.match(r"^\s*-\s*[EWI]S\d{4}\s*$", line):
                    with self.subTest(template=path.name, line=i + 1):
                        self.assertTrue(lines[i - 1].strip().startswith("#"), f"{path.name}:{i + 1} has no # reason above it")


if __name__ == "__main__":
    unittest.main()
