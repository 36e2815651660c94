"""A pipeline deploys only its own service, and its promoted image is kept.

The pipeline stack hands its build the service, namespace and cluster it owns
(CANARY_SERVICE, CANARY_NAMESPACE, CANARY_CLUSTER, which `canary prepare` checks
deploy.json against) and names its executions <namespace>_<service>_-<id>, the owner
prefix render-template checks (crates/render-template/src/owner.rs). The Pin stage tags
the promoted image keep-<tag> with a role that may do only that, in this service's
repository; its script runs here against moto_server's ECR.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import common

PIPELINE = common.CFN_DIR / "pipeline.yaml"
# The owner prefix as render-template reads it: two DNS labels, each ended by `_`.
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
OWNED_NAME = re.compile(rf"^(?P<namespace>{DNS_LABEL})_(?P<service>{DNS_LABEL})_(?P<rest>.*)$")
UUID = "1624a1d1-3699-43f0-8e1e-6bafd7fde791"


def stages(t: dict) -> dict:
    return {s["Name"]: s for s in t["Resources"]["Pipeline"]["Properties"]["Stages"]}


def execution_name(prefix_sub: str, namespace: str, service: str) -> str:
    """The name CodePipeline gives: the prefix, `-`, the action execution id."""
    prefix = prefix_sub.replace("${KubernetesNamespace}", namespace).replace("${ServiceName}", service)
    return f"{prefix}-{UUID}"


class PipelineOwnsOneService(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = common.load(PIPELINE)

    def test_the_stack_names_the_service_namespace_and_cluster_it_owns(self):
        params = self.t["Parameters"]
        for name in ("ServiceName", "KubernetesNamespace", "ClusterName"):
            with self.subTest(parameter=name):
                self.assertIn(name, params)
                self.assertNotIn("Default", params[name], "what a pipeline owns must be chosen, not defaulted")
        self.assertEqual(params["KubernetesNamespace"]["AllowedPattern"], f"^{DNS_LABEL.replace('{0,61}', '*')}$")

    def test_the_build_gets_the_owner_variables_that_canary_prepare_checks(self):
        env = {
            v["Name"]: v["Value"]
            for v in self.t["Resources"]["BuildProject"]["Properties"]["Environment"]["EnvironmentVariables"]
        }
        self.assertEqual(env["CANARY_SERVICE"], {"Ref": "ServiceName"})
        self.assertEqual(env["CANARY_NAMESPACE"], {"Ref": "KubernetesNamespace"})
        self.assertEqual(env["CANARY_CLUSTER"], {"Ref": "ClusterName"})
        spec = self.t["Resources"]["BuildProject"]["Properties"]["Source"]["BuildSpec"]
        # prepare runs with no --service/--namespace/--cluster of its own: the stack's
        # variables are what it compares with
        (line,) = [l for l in spec.splitlines() if "canary prepare" in l]
        for flag in ("--service", "--namespace", "--cluster"):
            self.assertNotIn(flag, line)

    def test_executions_are_named_with_the_owner_prefix(self):
        (action,) = stages(self.t)["Deploy"]["Actions"]
        prefix = action["Configuration"]["ExecutionNamePrefix"]
        self.assertEqual(prefix, {"Fn::Sub": "${KubernetesNamespace}_${ServiceName}_"})
        name = execution_name(prefix["Fn::Sub"], "yelb", "yelb-appserver")
        m = OWNED_NAME.match(name)
        self.assertIsNotNone(m, name)
        self.assertEqual((m["namespace"], m["service"]), ("yelb", "yelb-appserver"))
        # `--` inside a label cannot move the boundary (it could with `--` as separator)
        m = OWNED_NAME.match(execution_name(prefix["Fn::Sub"], "a--b", "c"))
        self.assertEqual((m["namespace"], m["service"]), ("a--b", "c"))

    def test_the_longest_owner_that_fits_makes_an_80_character_name(self):
        (action,) = stages(self.t)["Deploy"]["Actions"]
        sub = action["Configuration"]["ExecutionNamePrefix"]["Fn::Sub"]
        service = "s" * self.t["Parameters"]["ServiceName"]["MaxLength"]
        name = execution_name(sub, "n" * (41 - len(service)), service)
        self.assertEqual(len(name), 80)
        self.assertRegex(name, r"^[A-Za-z0-9_-]+$")


class PinStage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = common.load(PIPELINE)

    def test_pin_runs_after_deploy_on_the_build_output(self):
        st = stages(self.t)
        self.assertEqual(list(st), ["Source", "Build", "Deploy", "Pin"])
        (action,) = st["Pin"]["Actions"]
        self.assertEqual(action["ActionTypeId"]["Provider"], "CodeBuild")
        self.assertEqual(action["Configuration"]["ProjectName"], {"Ref": "PinProject"})
        self.assertEqual(action["InputArtifacts"], [{"Name": "BuildOutput"}])
        spec = self.t["Resources"]["BuildProject"]["Properties"]["Source"]["BuildSpec"]
        self.assertIn("- image-tag", spec)
        self.assertIn("\"$TAG\" > image-tag", spec)

    def test_the_pin_role_may_only_read_and_tag_images_of_this_repository(self):
        ecr = []
        for policy in self.t["Resources"]["PinRole"]["Properties"]["Policies"]:
            for st in common.statements(policy["PolicyDocument"]):
                actions = common.as_list(st["Action"])
                if any(a.startswith("ecr:") for a in actions):
                    ecr.append(st)
        (st,) = ecr
        self.assertEqual(sorted(st["Action"]), ["ecr:BatchGetImage", "ecr:PutImage"])
        self.assertEqual(st["Resource"], {"Fn::GetAtt": ["Repository", "Arn"]})
        run = self.t["Resources"]["PipelineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        (start,) = [s for s in run if s.get("Sid") == "RunTheBuild"]
        self.assertIn({"Fn::GetAtt": ["PinProject", "Arn"]}, start["Resource"])

    def test_the_tag_is_one_the_lifecycle_keeps(self):
        text = self.t["Resources"]["Repository"]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
        rules = json.loads(text.replace("${ImageRetentionCount}", "100"))["rules"]
        patterns = [p for r in rules for p in r["selection"].get("tagPatternList", [])]
        self.assertEqual(patterns, ["keep-*"])
        self.assertIn('keep="keep-$tag"', pin_script(self.t))


def pin_script(t: dict) -> str:
    import yaml

    spec = yaml.safe_load(t["Resources"]["PinProject"]["Properties"]["Source"]["BuildSpec"])
    return "\n".join(spec["phases"]["build"]["commands"])


class PinAgainstMoto(unittest.TestCase):
    """The Pin stage's script, as CodeBuild runs it, against moto_server's ECR."""

    REPO = "eks-canary/yelb-ui"

    @classmethod
    def setUpClass(cls):
        common.require_peer("moto_server", shutil.which("moto_server"), f"{common.PIP_REQUIREMENTS} (moto[server])")
        common.require_peer("aws", shutil.which("aws"), f"{common.PIP_REQUIREMENTS} (awscli)")
        import boto3

        cls.script = pin_script(common.load(PIPELINE))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-pin-{port}.log"), "w")
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
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        cls.ecr = session.client("ecr", endpoint_url=cls.endpoint)
        repo = cls.ecr.create_repository(repositoryName=cls.REPO, imageTagMutability="IMMUTABLE")
        cls.uri = repo["repository"]["repositoryUri"]
        cls.env = {
            **common.env_without_aws_secrets(),
            "AWS_ENDPOINT_URL": cls.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_PAGER": "",
            "REPOSITORY_URI": cls.uri,
        }

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)
        cls.log.close()

    def push(self, tag: str) -> str:
        """An image (a manifest of its own) under `tag`; returns its digest."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7, "digest": "sha256:" + "c" * 64},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": "sha256:" + tag.encode().hex().ljust(64, "0")[:64]}],
        }
        out = self.ecr.put_image(repositoryName=self.REPO, imageManifest=json.dumps(manifest), imageTag=tag)
        return out["image"]["imageId"]["imageDigest"]

    def tags_of(self, digest: str) -> set[str]:
        images = self.ecr.describe_images(repositoryName=self.REPO, imageIds=[{"imageDigest": digest}])["imageDetails"]
        return set(images[0].get("imageTags", []))

    def pin(self, tag: str, env: dict | None = None) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "image-tag"), "w") as f:
                f.write(tag + "\n")
            return subprocess.run(
                ["bash", "-c", self.script], cwd=d, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=120
            )

    def test_the_promoted_image_gets_keep_and_its_own_tag_stays(self):
        digest = self.push("abc123def456-7")
        other = self.push("abc123def456-8")
        out = self.pin("abc123def456-7")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"pinned {self.REPO}:abc123def456-7 as keep-abc123def456-7", out.stdout)
        self.assertNotIn("WARNING", out.stdout)
        self.assertEqual(self.tags_of(digest), {"abc123def456-7", "keep-abc123def456-7"})
        self.assertEqual(self.tags_of(other), {"abc123def456-8"})
        # a second run (the stage retried) finds it done
        again = self.pin("abc123def456-7")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("is already tagged keep-abc123def456-7", again.stdout)
        self.assertNotIn("WARNING", again.stdout)

    def test_a_failure_to_tag_is_reported_and_does_not_fail_the_stage(self):
        out = self.pin("never-pushed-1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("WARNING: the promoted image was not tagged keep-*", out.stdout)
        # ECR unreachable: the same, with the CLI's error in the log
        self.push("abc123def456-9")
        out = self.pin("abc123def456-9", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("WARNING", out.stdout)
        self.assertTrue(out.stderr.strip() or "Could not connect" in out.stdout, (out.stdout, out.stderr))


if __name__ == "__main__":
    unittest.main()
