"""The templates create in moto's CloudFormation (moto_server on loopback), as far as
moto supports the resource types. moto skips the types it does not model (it warns
and creates nothing): AWS::S3::BucketPolicy, AWS::EKS::AccessEntry,
AWS::CodeBuild::Project, AWS::CodePipeline::Pipeline, AWS::Logs::MetricFilter,
AWS::IAM::RolePolicy, AWS::Events::Rule; it ignores DefinitionS3Location and
DefinitionSubstitutions (its state machine gets an empty definition). What it does
model is checked here: the bucket, the functions with their code from S3, the roles
and their policies, the log groups, the state machine, the ECR repository, and the
exports one stack hands the next."""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.request
import warnings
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CLUSTER = "demo"
# What moto cannot create of shared.yaml (it models none of these types): the rollback
# function's asynchronous-invocation settings, the recovery dead-letter queue's policy and
# the notification topic's e-mail subscription (created only with NotificationEmail).
SHARED_DROPPED = ["NotificationEmailSubscription", "RecoveryDeadLetterQueuePolicy", "RollbackAsyncInvokeConfig"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_supports(resource_type: str) -> bool:
    from moto.cloudformation.parsing import resource_class_from_type

    return resource_class_from_type(resource_type) is not None


def references(value) -> set[str]:
    """Logical ids that a piece of template refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                out |= {m.split(".")[0] for m in __import__("re").findall(r"\$\{([^}!]+)\}", text)}
            out |= references(v)
    elif isinstance(value, list):
        for v in value:
            out |= references(v)
    return out


def prune_for_moto(template: dict) -> tuple[dict, list[str]]:
    """Drops the resources moto cannot model and, transitively, what refers to them: moto
    skips an unsupported type, then fails on any Fn::GetAtt of it. Returns the dropped ids."""
    resources = template["Resources"]
    dropped = [n for n, r in resources.items() if not moto_supports(r["Type"])]
    changed = True
    while changed:
        changed = False
        for name, res in list(resources.items()):
            if name not in dropped and references(res) & set(dropped):
                dropped.append(name)
                changed = True
    template["Resources"] = {n: r for n, r in resources.items() if n not in dropped}
    template["Outputs"] = {
        n: o for n, o in template.get("Outputs", {}).items() if not references(o) & set(dropped)
    }
    return template, dropped


def fake_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", b"\x7fELF stand-in")
    return buf.getvalue()


class MotoStacks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        common.require_peer("moto_server", shutil.which("moto_server"), f"{common.PIP_REQUIREMENTS} (moto[server])")
        import boto3

        warnings.simplefilter("ignore", ResourceWarning)
        cls.port = free_port()
        cls.endpoint = f"http://127.0.0.1:{cls.port}"
        cls.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-cfn-{cls.port}.log"), "w")
        cls.server = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(cls.port)], stdout=cls.log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(cls.endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                if time.time() > deadline or cls.server.poll() is not None:
                    cls.tearDownClass()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.2)
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        cls.client = lambda self_or_cls, name: session.client(name, endpoint_url=cls.endpoint)
        cls.cfn = session.client("cloudformation", endpoint_url=cls.endpoint)
        cls.s3 = session.client("s3", endpoint_url=cls.endpoint)
        cls.session = session
        cls.stack_outputs = {}
        try:
            cls._create_all()
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

    @classmethod
    def c(cls, name):
        return cls.session.client(name, endpoint_url=cls.endpoint)

    @classmethod
    def create(cls, name, template, params, capabilities=("CAPABILITY_IAM",)):
        body, dropped = prune_for_moto(common.load(common.CFN_DIR / template))
        cls.dropped = getattr(cls, "dropped", {})
        cls.dropped[name] = dropped
        cls.cfn.create_stack(
            StackName=name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=list(capabilities),
        )
        for _ in range(100):
            stack = cls.cfn.describe_stacks(StackName=name)["Stacks"][0]
            if not stack["StackStatus"].endswith("IN_PROGRESS"):
                break
            time.sleep(0.1)
        cls.stack_outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        cls.stack_status = getattr(cls, "stack_status", {})
        cls.stack_status[name] = (stack["StackStatus"], stack.get("StackStatusReason"))

    @classmethod
    def _create_all(cls):
        cls.create("eks-canary-artifacts", "artifacts-bucket.yaml", {})
        bucket = cls.stack_outputs["eks-canary-artifacts"].get("BucketName")
        cls.bucket = bucket
        if bucket:
            prefix = "artifacts/0123456789ab"
            for f in common.FUNCTIONS:
                cls.s3.put_object(Bucket=bucket, Key=f"{prefix}/{f}.zip", Body=fake_zip())
            cls.s3.put_object(
                Bucket=bucket, Key=f"{prefix}/canary-deployment.asl.json", Body=common.ASL_FILE.read_bytes()
            )
            cls.create(
                "eks-canary",
                "shared.yaml",
                {
                    "ArtifactsBucketName": bucket,
                    "ArtifactsPrefix": prefix,
                    "ClusterArns": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                },
            )
            cls.create("eks-canary-access-demo", "cluster-access.yaml", {"ClusterName": CLUSTER})
            cls.create(
                "eks-canary-pipeline-yelb-ui",
                "pipeline.yaml",
                {
                    "ServiceName": "yelb-ui",
                    "KubernetesNamespace": "yelb",
                    "ClusterName": CLUSTER,
                    "ConnectionArn": f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0a1b2c3d-aaaa-bbbb-cccc-123456789012",
                    "FullRepositoryId": "example/yelb-ui",
                    "CanaryCliSha256": "0" * 64,
                },
            )

    # ------------------------------------------------------------------ the stacks
    def test_moto_drops_only_the_types_it_does_not_model_and_what_refers_to_them(self):
        self.assertEqual(sorted(self.dropped["eks-canary-artifacts"]), ["AccessLogsBucketPolicy", "BucketPolicy"])
        self.assertEqual(sorted(self.dropped["eks-canary"]), SHARED_DROPPED)
        self.assertEqual(
            sorted(self.dropped["eks-canary-access-demo"]),
            sorted(common.logical(f) + "AccessEntry" for f in common.KUBE_FACING),
        )
        # the pipeline keeps its repository, artifact bucket, log group and roles
        # (PipelineRole goes too: its policy names the CodeBuild project by Fn::GetAtt)
        kept = {"Repository", "ArtifactBucket", "BuildLogGroup", "BuildRole"}
        self.assertFalse(kept & set(self.dropped["eks-canary-pipeline-yelb-ui"]), self.dropped)

    def test_every_stack_reaches_create_complete(self):
        for name in ("eks-canary-artifacts", "eks-canary", "eks-canary-access-demo", "eks-canary-pipeline-yelb-ui"):
            with self.subTest(stack=name):
                self.assertEqual(self.stack_status.get(name, ("not created",))[0], "CREATE_COMPLETE", self.stack_status.get(name))

    # ------------------------------------------------------------------ bucket
    def test_the_bucket_exists_with_default_encryption(self):
        # moto's CloudFormation applies BucketEncryption and Tags only; versioning,
        # lifecycle and the public access block are checked in test_templates.py.
        self.assertTrue(self.bucket)
        enc = self.s3.get_bucket_encryption(Bucket=self.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        self.assertEqual(enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")

    # ------------------------------------------------------------------ functions
    def test_the_six_functions_exist_on_arm64_provided_al2023_with_their_roles_and_environment(self):
        lam = self.c("lambda")
        iam = self.c("iam")
        role_arns = set()
        resources = common.load(common.CFN_DIR / "shared.yaml")["Resources"]
        for f in common.FUNCTIONS:
            with self.subTest(function=f):
                fn = lam.get_function(FunctionName=f"eks-canary-{f}")
                cfg = fn["Configuration"]
                role_arns.add(cfg["Role"])
                self.assertEqual(cfg["Runtime"], "provided.al2023")
                # (moto's CloudFormation drops Architectures: arm64 is checked in test_crates.py)
                self.assertEqual(cfg["Handler"], "bootstrap")
                declared = resources[common.logical(f) + "Function"]["Properties"]
                self.assertEqual((cfg["MemorySize"], cfg["Timeout"]), (declared["MemorySize"], declared["Timeout"]))
                # no SubnetIds given: outside any VPC
                self.assertFalse((cfg.get("VpcConfig") or {}).get("SubnetIds"), cfg.get("VpcConfig"))
                env = cfg["Environment"]["Variables"]
                self.assertEqual(env["CANARY_STATE_BUCKET"], self.bucket)
                self.assertEqual(env["CANARY_STATE_PREFIX"], "state/")
                self.assertEqual(env["RUST_LOG"], "info")
                role_name = cfg["Role"].rsplit("/", 1)[1]
                policies = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
                self.assertIn(f, policies)
                doc = iam.get_role_policy(RoleName=role_name, PolicyName=f)["PolicyDocument"]
                text = json.dumps(doc)
                self.assertIn(f"arn:aws:s3:::{self.bucket}/state/*", text)
                self.assertEqual(
                    f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}" in text, f in common.KUBE_FACING
                )
        self.assertEqual(len(role_arns), 6, "one role per function")

    def test_each_function_has_a_log_group_with_retention(self):
        logs = self.c("logs")
        groups = {
            g["logGroupName"]: g
            for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/eks-canary-")["logGroups"]
        }
        for f in common.FUNCTIONS:
            with self.subTest(function=f):
                self.assertEqual(groups[f"/aws/lambda/eks-canary-{f}"].get("retentionInDays"), 30)

    # ------------------------------------------------------------------ state machine
    def test_the_state_machine_exists_with_its_role(self):
        sfn = self.c("stepfunctions")
        arn = self.stack_outputs["eks-canary"]["StateMachineArn"]
        sm = sfn.describe_state_machine(stateMachineArn=arn)
        self.assertEqual(sm["name"], "eks-canary-canary-deployment")
        self.assertIn("role/", sm["roleArn"])

    def test_the_shared_stack_exports_what_the_other_stacks_import(self):
        exports = {e["Name"]: e["Value"] for e in self.cfn.list_exports()["Exports"]}
        for name in (
            "StateMachineArn",
            "BucketName",
            "DeployCanaryRoleArn",
            "ShiftWeightsRoleArn",
            "HealthCheckRoleArn",
            "RollbackRoleArn",
            "CleanupRoleArn",
        ):
            with self.subTest(export=name):
                self.assertIn(f"eks-canary-{name}", exports)
        self.assertEqual(
            len(self.stack_outputs["eks-canary"]["KubernetesRoleArns"].split(",")), len(common.KUBE_FACING)
        )

    # ------------------------------------------------------------------ pipeline
    def test_the_pipeline_stack_creates_its_immutable_repository(self):
        ecr = self.c("ecr")
        repo = ecr.describe_repositories(repositoryNames=["eks-canary/yelb-ui"])["repositories"][0]
        self.assertEqual(repo["imageTagMutability"], "IMMUTABLE")
        # (moto reads ImageScanningConfiguration with API-style keys and loses
        # ScanOnPush: scan on push is checked in test_templates.py)
        self.assertEqual(
            self.stack_outputs["eks-canary-pipeline-yelb-ui"]["RepositoryUri"], repo["repositoryUri"]
        )


if __name__ == "__main__":
    unittest.main()
