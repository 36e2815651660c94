"""The scripts: strict mode, a usage message on -h/--help and on bad arguments,
shellcheck-clean (a missing shellcheck fails), and the RBAC rendering."""

import json
import os
import re
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

    def test_deploy_shared_takes_subnets_and_security_groups_together_and_checks_them(self):
        for args, message in (
            (["--subnet-ids", "subnet-0a1b2c3d"], "--subnet-ids and --security-group-ids go together"),
            (["--security-group-ids", "sg-0a1b2c3d"], "--subnet-ids and --security-group-ids go together"),
            (["--subnet-ids", "subnet-0a1b2c3d,sg-0a1b2c3d", "--security-group-ids", "sg-0a1b2c3d"], "--subnet-ids `subnet-0a1b2c3d,sg-0a1b2c3d`"),
            (["--subnet-ids", "subnet-0a1b2c3d", "--security-group-ids", "sg-*"], "--security-group-ids `sg-*`"),
        ):
            with self.subTest(args=args):
                r = common.run(
                    [str(common.SCRIPTS / "deploy-shared"), "--cluster", "demo", *args], env=common.env_without_aws_secrets()
                )
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)

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


# Arrays that a script expands without the ${a[@]+"${a[@]}"} guard, each never empty
# where it is expanded (bash 3.2, macOS's, aborts on an empty one under set -u).
UNGUARDED_NEVER_EMPTY = {
    ("bench", "missing"): "inside `[[ ${#missing[@]} -gt 0 ]]`",
    ("deploy-shared", "ARNS"): "one per --cluster, and at least one is required",
    ("package", "FUNCTIONS"): "the six functions, set in _common.sh",
    ("test", "apt_packages"): "inside `[[ ${#apt_packages[@]} -gt 0 ]]`",
}


class EmptyArrays(unittest.TestCase):
    """bash before 4.4 (macOS ships 3.2) treats "${a[@]}" of an empty array as an unset
    variable, and set -u aborts the script. Newer bash (this machine's) cannot show it, so
    the guard is textual: every expansion of an array is ${a[@]+"${a[@]}"}, or is listed
    above with why the array is never empty there."""

    def expansions(self):
        for path in sorted(common.SCRIPTS.iterdir()):
            if not path.is_file():
                continue
            text = path.read_text()
            for m in re.finditer(r"\$\{(\w+)\[[@*]\]\}", text):
                line = text.count("\n", 0, m.start()) + 1
                if text[line_start(text, m.start()) :].lstrip().startswith("#"):
                    continue  # a comment
                guarded = text[max(0, m.start() - 2) : m.start()] == '+"' or text[m.end() : m.end() + 2] == '+"'
                yield path.name, m.group(1), line, guarded

    def test_every_array_expansion_is_guarded_or_never_empty(self):
        unguarded = [
            f"scripts/{name}:{line}: ${{{array}[@]}}"
            for name, array, line, guarded in self.expansions()
            if not guarded and (name, array) not in UNGUARDED_NEVER_EMPTY
        ]
        self.assertEqual(unguarded, [], "expand as ${a[@]+\"${a[@]}\"} (bash 3.2 with set -u):\n" + "\n".join(unguarded))

    def test_the_guard_form_is_what_the_scripts_use(self):
        guarded = [e for e in self.expansions() if e[3]]
        self.assertGreater(len(guarded), 30)
        for name, array in UNGUARDED_NEVER_EMPTY:
            with self.subTest(script=name, array=array):
                self.assertIn(f"${{{array}[", (common.SCRIPTS / name).read_text(), "a stale exception")

    def test_the_guard_expands_an_empty_array_to_nothing_and_keeps_words_whole(self):
        r = common.run(
            ["bash", "-c", 'set -euo pipefail; a=(); b=("x y" z); printf "<%s>" ${a[@]+"${a[@]}"} ${b[@]+"${b[@]}"}']
        )
        self.assertEqual((r.returncode, r.stdout), (0, "<x y><z>"), r.stderr)


def line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


class CleanupAgainstMoto(unittest.TestCase):
    """scripts/_common.sh's empty_bucket and delete_images, and scripts/cleanup, against
    moto_server: past 1,000 keys, with delete markers, and failures surfaced."""

    @classmethod
    def setUpClass(cls):
        common.require_peer("moto_server", shutil.which("moto_server"), f"{common.PIP_REQUIREMENTS} (moto[server])")
        common.require_peer("aws", shutil.which("aws"), f"{common.PIP_REQUIREMENTS} (awscli)")
        import socket
        import subprocess
        import time
        import urllib.request

        import boto3

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-scripts-{port}.log"), "w")
        cls.server = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=cls.log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(cls.endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                if time.time() > deadline or cls.server.poll() is not None:
                    cls.tearDownClass()
                    raise RuntimeError(f"moto_server did not start (log: {cls.log.name})")
                time.sleep(0.2)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        cls.s3 = session.client("s3", endpoint_url=cls.endpoint)
        cls.ecr = session.client("ecr", endpoint_url=cls.endpoint)
        cls.env = {
            **common.env_without_aws_secrets(),
            "AWS_ENDPOINT_URL": cls.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_PAGER": "",
        }

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)
        cls.log.close()

    def helper(self, call: str, extra_env: dict | None = None):
        script = f'set -euo pipefail; source "{common.SCRIPTS / "_common.sh"}"; {call}'
        return common.run(["bash", "-c", script], env={**self.env, **(extra_env or {})})

    def versioned_bucket(self, name: str, keys: int, versions: int, deleted: int) -> int:
        """A versioned bucket with `keys` keys of `versions` versions each, the first
        `deleted` of them deleted (one delete marker each). Returns the entries to remove."""
        from concurrent.futures import ThreadPoolExecutor

        self.s3.create_bucket(Bucket=name)
        self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

        def put(i):
            for v in range(versions):
                self.s3.put_object(Bucket=name, Key=f"state/c/ns/svc{i % 7}/history/{i}.json", Body=f"{v}".encode())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(keys)))
            list(pool.map(lambda i: self.s3.delete_object(Bucket=name, Key=f"state/c/ns/svc{i % 7}/history/{i}.json"), range(deleted)))
        return keys * versions + deleted

    def remaining(self, name: str) -> tuple[int, int]:
        versions = markers = 0
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=name):
            versions += len(page.get("Versions", []))
            markers += len(page.get("DeleteMarkers", []))
        return versions, markers

    def test_empty_bucket_removes_more_than_1000_versions_and_every_delete_marker(self):
        total = self.versioned_bucket("cleanup-many", keys=700, versions=2, deleted=300)
        self.assertEqual(self.remaining("cleanup-many"), (1400, 300))
        self.assertGreater(total, 1000)
        r = self.helper("delete_bucket cleanup-many")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deleted 1400 object versions and 300 delete markers", r.stderr)
        self.assertIn("deleting bucket cleanup-many", r.stderr)
        self.assertNotIn("cleanup-many", [b["Name"] for b in self.s3.list_buckets()["Buckets"]])
        # and a bucket that is gone is "not there", not an error
        r = self.helper("empty_bucket cleanup-many")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bucket cleanup-many: not there", r.stderr)

    def test_empty_bucket_stops_at_its_bound_instead_of_looping(self):
        self.versioned_bucket("cleanup-bound", keys=600, versions=2, deleted=0)
        r = self.helper("empty_bucket cleanup-bound", {"EKS_CANARY_CLEANUP_MAX_ROUNDS": "1"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("still not empty after 1 rounds (1000 versions and 0 delete markers deleted", r.stderr)
        self.assertEqual(self.remaining("cleanup-bound"), (200, 0))

    def test_an_unreachable_s3_is_an_error_not_a_missing_bucket(self):
        r = common.run(
            ["bash", "-c", f'set -euo pipefail; source "{common.SCRIPTS / "_common.sh"}"; empty_bucket some-bucket'],
            env={**self.env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
        )
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot tell whether bucket some-bucket exists", r.stderr)
        self.assertNotIn("not there", r.stderr)

    def test_delete_images_removes_more_than_one_page(self):
        import hashlib

        self.ecr.create_repository(repositoryName="eks-canary/many")
        for i in range(130):
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                               "digest": "sha256:" + hashlib.sha256(f"c{i}".encode()).hexdigest()},
                    "layers": [],
                }
            )
            self.ecr.put_image(repositoryName="eks-canary/many", imageManifest=manifest, imageTag=f"v{i}")
        r = self.helper("delete_images eks-canary/many")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("eks-canary/many: deleted 130 images", r.stderr)
        self.assertEqual(self.ecr.list_images(repositoryName="eks-canary/many")["imageIds"], [])
        r = self.helper("delete_images eks-canary/none")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("repository eks-canary/none: not there", r.stderr)

    def test_cleanup_with_every_optional_list_empty_runs_under_set_u(self):
        # --all-pipelines with no pipeline stack, no --service, no --namespace, no
        # --context, no --region: every array of the script is empty.
        r = common.run(
            [str(common.SCRIPTS / "cleanup"), "--all-pipelines", "--keep-shared", "--yes"], env=self.env
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cleanup done", r.stderr)


if __name__ == "__main__":
    unittest.main()
