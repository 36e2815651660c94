"""The scripts: strict mode, a usage message on -h/--help and on bad arguments,
shellcheck-clean (a missing shellcheck fails), and the RBAC rendering."""

import shutil
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402

SCRIPTS = ["package", "deploy-shared", "deploy-pipeline", "grant-cluster-access", "cleanup"]


class Scripts(unittest.TestCase):
    def test_every_script_is_executable_bash_in_strict_mode(self):
        for name in SCRIPTS:
            path = common.SCRIPTS / name
            with self.subTest(script=name):
                text = path.read_text()
                self.assertTrue(text.startswith("#!/usr/bin/env bash\n"))
                self.assertIn("\nset -euo pipefail\n", text)
                self.assertTrue(path.stat().st_mode & 0o111)
                self.assertNotIn("set -x", text)

    def test_help_prints_usage_and_succeeds(self):
        for name in SCRIPTS:
            for flag in ("-h", "--help"):
                with self.subTest(script=name, flag=flag):
                    r = common.run([str(common.SCRIPTS / name), flag], env=common.env_without_aws_secrets())
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertTrue(r.stdout.startswith(f"usage: scripts/{name}"), r.stdout)

    def test_a_bad_argument_prints_usage_and_exits_2(self):
        for name in SCRIPTS:
            with self.subTest(script=name):
                r = common.run([str(common.SCRIPTS / name), "--no-such-option"], env=common.env_without_aws_secrets())
                self.assertEqual(r.returncode, 2)
                self.assertIn("unknown argument `--no-such-option`", r.stderr)
                self.assertIn(f"usage: scripts/{name}", r.stderr)

    def test_an_option_missing_its_value_is_refused(self):
        r = common.run([str(common.SCRIPTS / "deploy-shared"), "--cluster"], env=common.env_without_aws_secrets())
        self.assertEqual(r.returncode, 2)
        self.assertIn("--cluster needs a value", r.stderr)

    def test_cleanup_without_yes_deletes_nothing(self):
        common.require_peer("aws", shutil.which("aws"), f"{common.PIP_REQUIREMENTS} (awscli)")
        r = common.run(
            [str(common.SCRIPTS / "cleanup"), "--service", "demo", "--keep-shared"],
            env=common.env_without_aws_secrets(),
        )
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing deleted: add --yes", r.stderr)

    def test_shellcheck_is_clean(self):
        exe = shutil.which("shellcheck")
        common.require_peer("shellcheck", exe, "apt-get install shellcheck")
        files = [str(common.SCRIPTS / "_common.sh")] + [str(common.SCRIPTS / n) for n in SCRIPTS]
        r = common.run([exe, "-x", *files])
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_shellcheck_is_clean_on_every_shell_script_of_the_tooling(self):
        exe = shutil.which("shellcheck")
        common.require_peer("shellcheck", exe, "apt-get install shellcheck")
        files = sorted(
            str(p) for p in common.SCRIPTS.iterdir() if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash")
        ) + [str(common.ROOT / "statemachine" / "validate.sh"), str(common.ROOT / "tests" / "cfn" / "run.sh")]
        for expected in ("test", "bench", "moto.sh"):
            self.assertIn(str(common.SCRIPTS / expected), files)
        r = common.run([exe, "-x", *files])
        self.assertEqual(r.returncode, 0, r.stdout)


class RbacRendering(unittest.TestCase):
    def test_print_rbac_renders_one_role_and_binding_per_namespace(self):
        import yaml

        r = common.run(
            [str(common.SCRIPTS / "grant-cluster-access"), "--print-rbac", "--namespace", "yelb", "--namespace", "shop"]
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        self.assertEqual([(d["kind"], d["metadata"]["namespace"]) for d in docs],
                         [("Role", "yelb"), ("RoleBinding", "yelb"), ("Role", "shop"), ("RoleBinding", "shop")])
        self.assertNotIn("${", r.stdout)
        self.assertEqual(docs[1]["subjects"][0]["name"], "eks-canary-deployers")

    def test_a_system_group_or_a_bad_namespace_is_refused(self):
        for args in (["--group", "system:masters"], ["--namespace", "Bad_NS"]):
            with self.subTest(args=args):
                r = common.run([str(common.SCRIPTS / "grant-cluster-access"), "--print-rbac", "--namespace", "ok", *args])
                self.assertEqual(r.returncode, 2, r.stderr)


if __name__ == "__main__":
    unittest.main()
