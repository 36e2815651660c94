"""The shared stack's health-source parameters, deployed through moto's CloudFormation:
PrometheusWorkspaceArns (aps:QueryMetrics on exactly those workspaces),
EnableLatticeMetrics (the two VPC Lattice read calls that find a target group) and
PrometheusCredentials (an environment variable of the health-check function only).
Three stacks from one template: the defaults, two workspaces plus credentials, and
Lattice on. What each role may do is read back from moto's IAM and evaluated here
(Allow statements, action and resource wildcards; none of these policies has a Deny).

One difference from CloudFormation: moto keeps a null in a list where an Fn::If chose
AWS::NoValue (CloudFormation drops the item), so the statements are read without those
nulls; test_policies.py checks the Fn::If structure itself."""

import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import test_moto  # noqa: E402  (its helpers only: importing the module runs no tests twice)

REGION = test_moto.REGION
ACCOUNT = test_moto.ACCOUNT
BUCKET = "eks-canary-health-sources"
PREFIX = "artifacts/0123456789ab"
WORKSPACES = [
    f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-11111111-2222-3333-4444-555555555555",
]
OTHER_WORKSPACE = f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-99999999-8888-7777-6666-555555555555"
TOKEN = "s3cr3t-token-for-the-test"
CREDENTIALS_VAR = "CANARY_PROMETHEUS_CREDENTIALS"

STACKS = {
    "hs-defaults": {},
    "hs-amp": {"PrometheusWorkspaceArns": ",".join(WORKSPACES), "PrometheusCredentials": TOKEN},
    "hs-lattice": {"EnableLatticeMetrics": "true"},
}

# What a target-group lookup calls, and Lattice calls it must not be able to make.
LATTICE_READS = {"vpc-lattice:ListTargetGroups", "vpc-lattice:ListTagsForResource"}
LATTICE_OTHERS = [
    "vpc-lattice:GetTargetGroup",
    "vpc-lattice:ListTargets",
    "vpc-lattice:CreateTargetGroup",
    "vpc-lattice:UpdateTargetGroup",
    "vpc-lattice:RegisterTargets",
    "vpc-lattice:TagResource",
    "vpc-lattice:ListServices",
    "vpc-lattice-svcs:Invoke",
]
APS_OTHERS = ["aps:RemoteWrite", "aps:GetSeries", "aps:DescribeWorkspace", "aps:DeleteWorkspace", "aps:ListWorkspaces"]


def statements_of(document) -> list[dict]:
    """A policy document as moto answers it (a dict, JSON, or a Python repr), as a list of
    statements without moto's AWS::NoValue nulls."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            document = ast.literal_eval(document)
    return [s for s in common.as_list(document["Statement"]) if s is not None]


def allows(statements: list[dict], action: str, resource: str) -> bool:
    """Whether an Allow statement grants `action` on `resource` (IAM's case-insensitive
    action match and * / ? wildcards; conditions are not evaluated)."""
    for st in statements:
        assert st.get("Effect") in ("Allow", "Deny"), st
        assert st["Effect"] == "Allow", f"unexpected Deny: {st}"
        actions = common.as_list(st["Action"])
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        if any(fnmatch.fnmatchcase(resource, r) for r in common.as_list(st["Resource"])):
            return True
    return False


def actions_of(statements: list[dict], prefix: str) -> set[str]:
    return {a for st in statements for a in common.as_list(st["Action"]) if a.startswith(prefix)}


class HealthSourceParameters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        common.require_peer("moto_server", shutil.which("moto_server"), f"{common.PIP_REQUIREMENTS} (moto[server])")
        import boto3

        warnings.simplefilter("ignore", ResourceWarning)
        port = test_moto.free_port()
        endpoint = f"http://127.0.0.1:{port}"
        cls.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-health-sources-{port}.log"), "w")
        cls.server = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=cls.log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.time() + 30
            while True:
                try:
                    urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                    break
                except Exception:
                    if time.time() > deadline or cls.server.poll() is not None:
                        raise RuntimeError(f"moto_server did not start (log: {cls.log.name})")
                    time.sleep(0.2)
            session = boto3.session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
            )
            cls.lam = session.client("lambda", endpoint_url=endpoint)
            cls.iam = session.client("iam", endpoint_url=endpoint)
            cfn = session.client("cloudformation", endpoint_url=endpoint)
            s3 = session.client("s3", endpoint_url=endpoint)
            s3.create_bucket(Bucket=BUCKET)
            for f in common.FUNCTIONS:
                s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{f}.zip", Body=test_moto.fake_zip())
            body, dropped = test_moto.prune_for_moto(common.load(common.CFN_DIR / "shared.yaml"))
            assert sorted(dropped) == test_moto.SHARED_DROPPED, f"moto would drop {dropped} from shared.yaml"
            cls.status = {}
            for name, extra in STACKS.items():
                params = {
                    "ArtifactsBucketName": BUCKET,
                    "ArtifactsPrefix": PREFIX,
                    "ClusterArns": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/demo",
                    **extra,
                }
                cfn.create_stack(
                    StackName=name,
                    TemplateBody=json.dumps(body),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
                    Capabilities=["CAPABILITY_IAM"],
                )
                for _ in range(100):
                    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
                    if not stack["StackStatus"].endswith("IN_PROGRESS"):
                        break
                    time.sleep(0.1)
                cls.status[name] = (stack["StackStatus"], stack.get("StackStatusReason"))
        except BaseException:
            cls.tearDownClass()  # unittest skips tearDownClass when setUpClass fails
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        try:
            cls.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.server.kill()
        cls.log.close()

    def function(self, stack, f):
        return self.lam.get_function_configuration(FunctionName=f"{stack}-{f}")

    def role_statements(self, stack, f):
        role = self.function(stack, f)["Role"].rsplit("/", 1)[1]
        names = self.iam.list_role_policies(RoleName=role)["PolicyNames"]
        self.assertEqual(names, [f], f"{stack} {f}: inline policies {names}")
        return statements_of(self.iam.get_role_policy(RoleName=role, PolicyName=f)["PolicyDocument"])

    # ------------------------------------------------------------------ all stacks
    def test_every_stack_reaches_create_complete(self):
        for name in STACKS:
            with self.subTest(stack=name):
                self.assertEqual(self.status[name][0], "CREATE_COMPLETE", self.status[name])

    def test_no_other_function_gets_aps_lattice_or_the_credentials_whatever_the_parameters(self):
        for stack in STACKS:
            for f in common.FUNCTIONS:
                if f == "health-check":
                    continue
                with self.subTest(stack=stack, function=f):
                    sts = self.role_statements(stack, f)
                    self.assertEqual(actions_of(sts, "aps:") | actions_of(sts, "vpc-lattice"), set())
                    self.assertNotIn(CREDENTIALS_VAR, self.function(stack, f)["Environment"]["Variables"])

    # ------------------------------------------------------------------ defaults
    def test_by_default_health_check_has_no_aps_or_lattice_permission_and_no_credentials(self):
        sts = self.role_statements("hs-defaults", "health-check")
        self.assertEqual(actions_of(sts, "aps:"), set())
        self.assertEqual(actions_of(sts, "vpc-lattice"), set())
        for action in ["aps:QueryMetrics", *sorted(LATTICE_READS)]:
            with self.subTest(action=action):
                self.assertFalse(allows(sts, action, WORKSPACES[0]))
                self.assertFalse(allows(sts, action, f"arn:aws:vpc-lattice:{REGION}:{ACCOUNT}:targetgroup/tg-0123"))
        # what it always has is still there
        self.assertTrue(allows(sts, "cloudwatch:GetMetricData", "*"))
        self.assertNotIn(CREDENTIALS_VAR, self.function("hs-defaults", "health-check")["Environment"]["Variables"])

    # ------------------------------------------------------------------ two workspaces
    def test_two_workspaces_allow_query_metrics_on_exactly_those(self):
        sts = self.role_statements("hs-amp", "health-check")
        aps = [st for st in sts if actions_of([st], "aps:")]
        self.assertEqual(len(aps), 1, aps)
        self.assertEqual(common.as_list(aps[0]["Action"]), ["aps:QueryMetrics"])
        self.assertEqual(sorted(common.as_list(aps[0]["Resource"])), sorted(WORKSPACES))
        for ws in WORKSPACES:
            self.assertTrue(allows(sts, "aps:QueryMetrics", ws), ws)
        self.assertFalse(allows(sts, "aps:QueryMetrics", OTHER_WORKSPACE))
        for action in APS_OTHERS:
            with self.subTest(action=action):
                self.assertFalse(allows(sts, action, WORKSPACES[0]))
        self.assertEqual(actions_of(sts, "vpc-lattice"), set(), "workspaces alone grant no Lattice call")

    def test_the_credentials_reach_the_health_check_function_only(self):
        env = self.function("hs-amp", "health-check")["Environment"]["Variables"]
        self.assertEqual(env[CREDENTIALS_VAR], TOKEN)
        self.assertEqual(env["RUST_LOG"], "info")

    # ------------------------------------------------------------------ Lattice
    def test_lattice_on_allows_only_the_two_target_group_reads(self):
        sts = self.role_statements("hs-lattice", "health-check")
        self.assertEqual(actions_of(sts, "vpc-lattice"), LATTICE_READS)
        (st,) = [s for s in sts if actions_of([s], "vpc-lattice")]
        self.assertEqual(st["Resource"], "*")
        self.assertEqual(st["Condition"], {"StringEquals": {"aws:RequestedRegion": REGION}})
        tg = f"arn:aws:vpc-lattice:{REGION}:{ACCOUNT}:targetgroup/tg-0123456789abcdef0"
        for action in sorted(LATTICE_READS):
            self.assertTrue(allows(sts, action, tg), action)
        for action in LATTICE_OTHERS:
            with self.subTest(action=action):
                self.assertFalse(allows(sts, action, tg))
        self.assertEqual(actions_of(sts, "aps:"), set(), "Lattice alone grants no Prometheus query")
        self.assertNotIn(CREDENTIALS_VAR, self.function("hs-lattice", "health-check")["Environment"]["Variables"])


class DocsMatchTheTemplate(unittest.TestCase):
    """docs/deploying.md's section on these sources names the template's parameters, their
    defaults and the credentials variable as they are."""

    @classmethod
    def setUpClass(cls):
        text = (common.ROOT / "docs" / "deploying.md").read_text()
        start = text.index("## Health metrics from Prometheus, Amazon Managed Service for Prometheus, or VPC Lattice")
        cls.section = text[start : text.index("\n## ", start + 1)]
        cls.t = common.load(common.CFN_DIR / "shared.yaml")

    def test_the_parameter_table_gives_each_new_parameter_with_its_default(self):
        rows = dict(re.findall(r"^\| `([A-Za-z]+)` \| ([^|]+) \|", self.section, re.M))
        expected = {"PrometheusWorkspaceArns": "empty", "EnableLatticeMetrics": "`false`", "PrometheusCredentials": "empty"}
        self.assertEqual({k: v.strip() for k, v in rows.items()}, expected)
        for name, shown in expected.items():
            default = self.t["Parameters"][name]["Default"]
            self.assertEqual(shown, "empty" if default == "" else f"`{default}`", name)

    def test_the_examples_are_json_and_name_the_variable_the_stack_sets(self):
        blocks = re.findall(r"```json\n(.*?)```", self.section, re.S)
        self.assertEqual(len(blocks), 3)
        sources = []
        for b in blocks:
            metrics = json.loads(b)["metrics"]
            sources.append(metrics["source"])
            if "credentials_env" in metrics:
                self.assertEqual(metrics["credentials_env"], CREDENTIALS_VAR)
        self.assertEqual(sources, ["prometheus", "prometheus", "lattice"])
        env = self.t["Resources"]["HealthCheckFunction"]["Properties"]["Environment"]["Variables"]
        self.assertIn(CREDENTIALS_VAR, env)
        self.assertIn(CREDENTIALS_VAR, self.t["Parameters"]["PrometheusCredentials"]["Description"])


if __name__ == "__main__":
    unittest.main()
