"""cfn-lint passes on every template, with no warnings; any ignored check carries a reason."""

import re
import shutil
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402


class CfnLint(unittest.TestCase):
    def test_there_are_templates_to_lint(self):
        names = {p.name for p in common.cfn_templates()}
        for expected in ("artifacts-bucket.yaml", "shared.yaml", "cluster-access.yaml", "pipeline.yaml"):
            self.assertIn(expected, names)

    def test_every_template_passes_cfn_lint_with_informational_checks_too(self):
        exe = shutil.which("cfn-lint")
        common.require_peer("cfn-lint", exe, f"{common.PIP_REQUIREMENTS} (cfn-lint)")
        for path in common.cfn_templates():
            with self.subTest(template=path.name):
                result = common.run([exe, "--include-checks", "I", "--", str(path)])
                self.assertEqual(
                    result.returncode, 0, f"cfn-lint on {path.name}:\n{result.stdout}{result.stderr}"
                )
                self.assertEqual(result.stdout.strip(), "", result.stdout)

    def test_every_ignored_check_is_preceded_by_a_comment_giving_the_reason(self):
        for path in common.cfn_templates():
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                if not re.match(r"^\s*-\s*[EWI]S?\d{4}\s*$", line):
                    continue
                before = lines[max(0, i - 10) : i]
                with self.subTest(template=path.name, line=i + 1):
                    self.assertTrue(
                        any(b.strip().startswith("#") for b in before),
                        f"{path.name}:{i + 1}: `{line.strip()}` is ignored without a reason",
                    )


if __name__ == "__main__":
    unittest.main()
