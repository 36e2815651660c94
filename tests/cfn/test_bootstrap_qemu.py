"""The shipped artifact runs: each packaged arm64 `bootstrap` (the zips scripts/package
makes, see test_package.py) is started under qemu-user (qemu-aarch64-static with Debian's
arm64 glibc), as Lambda starts it on provided.al2023, against a Lambda Runtime API of
our own (below), with moto_server as AWS (S3 for records and locks, EKS, CloudWatch,
EventBridge, SNS) and the environment the shared stack gives the functions. Runs with
the real build (CANARY_PACKAGE_BUILD=1, which scripts/test sets unless --quick).

One service (the seed's yelb-appserver, a first deployment), the functions in the state
machine's order, each process started once and sent its invocations in turn:

- render-template starts deployment A (the lock, state.json, the history record and the
  manifest in moto's S3), and refuses an execution named for another service before
  taking any lock (InvalidInput);
- deploy-canary meets a cluster without the namespace (a loopback API server answering
  404 to everything, reached through CANARY_KUBECONFIG): its one apply is refused, one
  GET of the namespace says why, and it fails with NamespaceMissing;
- rollback, given that error as the state machine's Catch adds it, ends A without the
  cluster: the record rolled back, the lock released;
- render-template starts deployment B; health-check judges it from moto's CloudWatch
  (no errors); shift-weights's route write is refused by the same cluster (KubeError);
  cleanup, through EKS as in Lambda (moto's DescribeCluster; ending a first deployment
  needs no request to the cluster), promotes B and releases the lock.

Each invocation's answer time (from handing out the event to its answer) and each
process's init time (from starting it to its first `GET /next`) is printed on stderr."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
import test_moto  # noqa: E402  (its helpers only)
import test_package  # noqa: E402  (the shared real build)

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "canary-state-qemu"
# as the shared stack sets CANARY_STATE_PREFIX
PREFIX = "state/"
FIXTURE = common.ROOT / "tests" / "fixtures" / "yelb" / "yelb-appserver"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/yelb-appserver"
# The error names of crates/canary-core/src/errors.rs (ErrorName::ALL).
OUR_ERRORS = {
    "InvalidInput", "ServiceLocked", "LockLost", "KubeTransient", "KubeError", "RouteConflict",
    "CanaryNotReady", "Aborted", "MetricsTransient", "MetricsError", "StoreTransient", "StoreError",
    "Internal", "RecoveryNeeded", "RouteNotConfirmed", "NamespaceMissing",
}  # fmt: skip
# How long one invocation may take under emulation before the test gives up.
INVOKE_TIMEOUT = 120.0


def execution_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:eks-canary:{name}"


def deploy_json(version: int) -> dict:
    """The seed's yelb-appserver deploy.json as the pipeline hands it over: the image
    and the template (base64) added."""
    doc = json.loads((FIXTURE / "deploy.json").read_text())
    doc["container_image"] = f"{IMAGE}:{version}"
    doc["config_file"] = base64.b64encode((FIXTURE / "kubernetes_template.yml").read_bytes()).decode()
    return doc


def error_names_in_source() -> set[str]:
    """The names ErrorName::as_str gives, read from crates/canary-core/src/errors.rs (so
    OUR_ERRORS cannot drift from it)."""
    text = (common.ROOT / "crates" / "canary-core" / "src" / "errors.rs").read_text()
    return set(re.findall(r'Self::\w+ => "(\w+)"', text))


@dataclass
class Invocation:
    event: dict
    request_id: str = ""
    handed_at: float = 0.0
    done_at: float = 0.0
    ok: bool | None = None
    body: object = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def seconds(self) -> float:
        return self.done_at - self.handed_at


class RuntimeApi:
    """A Lambda Runtime API (2018-06-01) on loopback for one function process: `GET
    /runtime/invocation/next` hands out the queued events one at a time (it waits, as
    Lambda's does, while there is none), `POST /runtime/invocation/{id}/response` and
    `/error` record the answer, `POST /runtime/init/error` records a failed start."""

    def __init__(self, function: str):
        self.function = function
        self.events: queue.Queue[Invocation] = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors: list[str] = []
        self.unknown: list[str] = []
        self.closing = threading.Event()
        self.first_poll_at: float | None = None
        self.count = 0
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the process was stopped while it waited for an event

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    api.unknown.append(f"GET {self.path}")
                    return self.reply(404, b'{"errorMessage":"unknown path"}')
                if api.first_poll_at is None:
                    api.first_poll_at = time.monotonic()
                while True:
                    if api.closing.is_set():
                        return self.reply(410)
                    try:
                        inv = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                with api.lock:
                    api.count += 1
                    inv.request_id = f"qemu-{api.function}-{api.count}"
                    api.in_flight[inv.request_id] = inv
                inv.handed_at = time.monotonic()
                deadline_ms = int((time.time() + INVOKE_TIMEOUT) * 1000)
                self.reply(
                    200,
                    json.dumps(inv.event).encode(),
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": (
                            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:eks-canary-{api.function}"
                        ),
                        "Lambda-Runtime-Trace-Id": f"Root=1-00000000-{api.count:024x};Sampled=0",
                    },
                )

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.fullmatch(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)", self.path)
                if self.path == "/2018-06-01/runtime/init/error":
                    api.init_errors.append(body.decode(errors="replace"))
                    return self.reply(202, b'{"status":"OK"}')
                if not m:
                    api.unknown.append(f"POST {self.path}")
                    return self.reply(404, b'{"errorMessage":"unknown path"}')
                with api.lock:
                    inv = api.in_flight.pop(m.group(1), None)
                if inv is None:
                    api.unknown.append(f"POST {self.path} (no such request)")
                    return self.reply(400, b'{"errorMessage":"unknown request id"}')
                inv.done_at = time.monotonic()
                inv.ok = m.group(2) == "response"
                try:
                    inv.body = json.loads(body)
                except ValueError:
                    inv.body = body.decode(errors="replace")
                inv.done.set()
                self.reply(202, b'{"status":"OK"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class Bootstrap:
    """One packaged `bootstrap` under qemu-user, with its own Runtime API."""

    def __init__(self, function: str, binary: Path, qemu: list[str], env: dict, log: Path):
        self.function = function
        self.api = RuntimeApi(function)
        self.log = log
        self.logfile = open(log, "w")
        env = dict(env)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "AWS_LAMBDA_FUNCTION_NAME": f"eks-canary-{function}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/eks-canary-{function}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "qemu",
            }
        )
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [*qemu, str(binary)], env=env, stdin=subprocess.DEVNULL, stdout=self.logfile, stderr=subprocess.STDOUT
        )

    def log_tail(self, lines: int = 15) -> str:
        self.logfile.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def invoke(self, event: dict) -> Invocation:
        inv = Invocation(event)
        self.api.events.put(inv)
        deadline = time.monotonic() + INVOKE_TIMEOUT
        while not inv.done.wait(0.1):
            if self.api.init_errors:
                raise AssertionError(f"{self.function} failed to start: {self.api.init_errors}\n{self.log_tail()}")
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.function} exited with status {self.process.returncode} without answering\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.function} did not answer within {INVOKE_TIMEOUT:.0f} s\n{self.log_tail()}")
        return inv

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.api.close()
        self.logfile.close()


class NamespacelessCluster:
    """A Kubernetes API server on loopback in which nothing exists: every request is
    answered 404 with a Status, as a cluster without the deployment's namespace answers.
    Records the requests."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                cluster.requests.append((self.command, self.path))
                m = re.search(r"/namespaces/([^/?]+)", self.path)
                name = m.group(1) if m else ""
                body = json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": f'namespaces "{name}" not found',
                        "reason": "NotFound",
                        "details": {"name": name, "kind": "namespaces"},
                        "code": 404,
                    }
                ).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, namespace: str) -> str:
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: empty\n  cluster:\n    server: \"{self.url}\"\n"
            "users:\n- name: empty\n  user:\n    token: empty-cluster-token\n"
            "contexts:\n- name: empty\n  context:\n    cluster: empty\n    user: empty\n"
            f"    namespace: \"{namespace}\"\n"
            "current-context: empty\n"
        )

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ErrorNames(unittest.TestCase):
    def test_the_error_names_checked_here_are_canary_cores(self):
        self.assertEqual(OUR_ERRORS, error_names_in_source())


@unittest.skipUnless(test_package.REAL_BUILD, test_package.REAL_BUILD_SKIP)
class BootstrapsUnderQemu(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cleanups: list = []
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        cls.qemu = common.require_qemu_arm64()
        common.require_peer("moto_server", shutil.which("moto_server"), f"{common.PIP_REQUIREMENTS} (moto[server])")
        import boto3

        cls.tmp = Path(tempfile.mkdtemp(prefix="canary-qemu-"))
        cls.cleanups.append(lambda: shutil.rmtree(cls.tmp, ignore_errors=True))
        cls.binaries = cls._bootstraps()

        port = test_moto.free_port()
        cls.moto_endpoint = f"http://127.0.0.1:{port}"
        moto_log = open(cls.tmp / "moto.log", "w")
        moto = subprocess.Popen(
            ["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=moto_log, stderr=subprocess.STDOUT
        )

        def stop_moto():
            moto.terminate()
            moto.wait(10)
            moto_log.close()

        cls.cleanups.append(stop_moto)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(cls.moto_endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                if time.time() > deadline or moto.poll() is not None:
                    raise RuntimeError(f"moto_server did not start (log: {moto_log.name})")
                time.sleep(0.2)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        cls.s3 = session.client("s3", endpoint_url=cls.moto_endpoint)
        cls.s3.create_bucket(Bucket=BUCKET)
        cls.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        spec = deploy_json(1)
        # The cluster deploy.json names, for the functions that reach it through EKS.
        session.client("eks", endpoint_url=cls.moto_endpoint).create_cluster(
            name=spec["cluster_name"],
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
            resourcesVpcConfig={"subnetIds": []},
        )

        # where the functions send the notification of each decision (EventBridge, and
        # SNS as an AWS Chatbot custom notification), read back through an SQS queue
        session.client("events", endpoint_url=cls.moto_endpoint).create_event_bus(Name="eks-canary")
        sns = session.client("sns", endpoint_url=cls.moto_endpoint)
        topic = sns.create_topic(Name="eks-canary-decisions")["TopicArn"]
        cls.sqs = session.client("sqs", endpoint_url=cls.moto_endpoint)
        cls.queue_url = cls.sqs.create_queue(QueueName="eks-canary-decisions")["QueueUrl"]
        queue_arn = cls.sqs.get_queue_attributes(QueueUrl=cls.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        cls.cluster = NamespacelessCluster()
        cls.cleanups.append(cls.cluster.close)
        kubeconfig = cls.tmp / "namespaceless.kubeconfig"
        kubeconfig.write_text(cls.cluster.kubeconfig(spec["kubernetes_namespace"]))

        home = cls.tmp / "home"
        home.mkdir()
        env = {k: v for k, v in common.env_without_aws_secrets().items() if "proxy" not in k.lower()}
        env.update(
            {
                "HOME": str(home),
                "AWS_ENDPOINT_URL": cls.moto_endpoint,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_EC2_METADATA_DISABLED": "true",
                "CANARY_STATE_BUCKET": BUCKET,
                "CANARY_STATE_PREFIX": PREFIX,
                "RUST_LOG": "info",
                "CANARY_EVENT_BUS": "eks-canary",
                "CANARY_TOPIC_ARN": topic,
                # health-check returns after one check instead of waiting for the next
                "CANARY_CHECK_INLINE_MAX_WAIT_SECONDS": "0",
            }
        )
        cls.env = {}
        for f in common.FUNCTIONS:
            cls.env[f] = dict(env)
            if f in ("deploy-canary", "shift-weights"):
                cls.env[f]["CANARY_KUBECONFIG"] = str(kubeconfig)
        # started at its first invocation, as Lambda starts a cold one
        cls.processes: dict[str, Bootstrap] = {}
        cls.timings: list[str] = []

    @classmethod
    def _bootstraps(cls) -> dict[str, Path]:
        """Each function's `bootstrap`, taken out of its zip of the real build."""
        dist = test_package.real_build_dist()
        out = {}
        for f in common.FUNCTIONS:
            with zipfile.ZipFile(dist / "lambda" / f"{f}.zip") as z:
                target = cls.tmp / f / "bootstrap"
                target.parent.mkdir()
                target.write_bytes(z.read("bootstrap"))
                target.chmod(0o755)
                out[f] = target
        return out

    @classmethod
    def tearDownClass(cls):
        for cleanup in reversed(getattr(cls, "cleanups", [])):
            try:
                cleanup()
            except Exception as e:  # the next cleanups still run
                print(f"cleanup failed: {e}", file=sys.stderr)
        for line in getattr(cls, "timings", []):
            print(line, file=sys.stderr)

    # -- helpers -------------------------------------------------------------------

    def invoke(self, function: str, event: dict) -> Invocation:
        cls = type(self)
        cold = function not in cls.processes
        if cold:
            p = Bootstrap(function, cls.binaries[function], cls.qemu, cls.env[function], cls.tmp / f"{function}.log")
            cls.cleanups.append(p.stop)
            cls.processes[function] = p
        p = cls.processes[function]
        inv = p.invoke(event)
        line = f"qemu arm64 {function}: answered {'ok' if inv.ok else 'with an error'} in {inv.seconds:.2f} s"
        if cold and p.api.first_poll_at is not None:
            line += (
                f" (cold: {inv.done_at - p.started_at:.2f} s from the process's start, of which init"
                f" {p.api.first_poll_at - p.started_at:.2f} s to its first GET /next)"
            )
        self.timings.append(line)
        return inv

    def answered(self, function: str, event: dict) -> dict:
        inv = self.invoke(function, event)
        self.assertTrue(inv.ok, f"{function} answered an error: {inv.body}\n{self.processes[function].log_tail()}")
        self.assertIsInstance(inv.body, dict, f"{function} answered {inv.body!r}")
        return inv.body

    def refused(self, function: str, event: dict, error_type: str, *message_parts: str) -> dict:
        inv = self.invoke(function, event)
        self.assertFalse(inv.ok, f"{function} answered {inv.body} instead of {error_type}")
        self.assertIsInstance(inv.body, dict, f"{function}'s error is not a JSON document: {inv.body!r}")
        self.assertIn(inv.body.get("errorType"), OUR_ERRORS, inv.body)
        self.assertEqual(inv.body.get("errorType"), error_type, inv.body)
        for part in message_parts:
            self.assertIn(part, inv.body.get("errorMessage", ""), inv.body)
        return inv.body

    def base_key(self, spec: dict) -> str:
        return f"{PREFIX}{spec['cluster_name']}/{spec['kubernetes_namespace']}/{spec['microservice_name']}/"

    def keys(self, spec: dict) -> set[str]:
        base = self.base_key(spec)
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=base).get("Contents", [])
        return {o["Key"][len(base) :] for o in listed}

    def read(self, spec: dict, key: str):
        body = self.s3.get_object(Bucket=BUCKET, Key=self.base_key(spec) + key)["Body"].read()
        return json.loads(body) if key.endswith(".json") else body.decode()

    def lock_holder(self, spec: dict) -> str | None:
        """The execution holding the service's lock (None when it is free: no lock.json,
        or `{"state": "released", ...}`)."""
        if "lock.json" not in self.keys(spec):
            return None
        lock = self.read(spec, "lock.json")
        self.assertIn(lock.get("state"), ("held", "released"), lock)
        return lock["execution"] if lock["state"] == "held" else None

    def assert_released_by(self, spec: dict, execution: str, function: str):
        lock = self.read(spec, "lock.json")
        self.assertEqual(
            (lock.get("state"), lock.get("execution"), lock.get("by")),
            ("released", execution, execution),
            f"{function} did not release the lock itself: {lock}",
        )

    def notifications(self) -> list[dict]:
        """The SNS messages received so far (each an AWS Chatbot custom notification)."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(json.loads(m["Body"])["Message"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    # -- the test ------------------------------------------------------------------

    def test_six_arm64_bootstraps_answer_real_invocations(self):
        spec = deploy_json(1)
        service = spec["microservice_name"]
        exec_a = execution_arn(f"yelb_{service}_qemu-a")

        # render-template: a first deployment, the lock taken, its objects in S3
        doc_a = self.answered("render-template", {"deploy": spec, "execution": exec_a})
        d = doc_a.get("deployment")
        self.assertIsInstance(d, dict, doc_a)
        self.assertEqual(d["execution"], exec_a)
        self.assertIsNone(d.get("stable_version"), d)
        version_a = d["canary_version"]
        self.assertEqual(doc_a["container_image"], spec["container_image"])
        keys = self.keys(spec)
        for key in ("lock.json", "state.json", f"history/{version_a}.json", f"manifests/{version_a}.yaml"):
            self.assertIn(key, keys, f"render-template did not write {key}: {sorted(keys)}")
        self.assertEqual(self.lock_holder(spec), exec_a)
        self.assertEqual(self.read(spec, "state.json")["in_progress"]["execution"], exec_a)
        self.assertEqual(d["manifest_key"], self.base_key(spec) + f"manifests/{version_a}.yaml")
        self.assertEqual(d["record_key"], self.base_key(spec) + f"history/{version_a}.json")
        self.assertIn(f"{service}-{version_a}", self.read(spec, f"manifests/{version_a}.yaml"))
        self.assertIn(spec["container_image"], self.read(spec, f"manifests/{version_a}.yaml"))

        # render-template: an execution named for another service touches nothing
        before = self.keys(spec)
        self.refused(
            "render-template",
            {"deploy": spec, "execution": execution_arn("yelb_yelb-ui_qemu-x")},
            "InvalidInput",
            "`yelb-ui`",
            f"`{service}`",
        )
        self.assertEqual(self.keys(spec), before)
        self.assertEqual(self.lock_holder(spec), exec_a)

        # deploy-canary: its first server-side apply is refused (404), one GET of the
        # namespace tells why, and it stops there
        ns = spec["kubernetes_namespace"]
        error = self.refused("deploy-canary", doc_a, "NamespaceMissing", ns)
        requests = self.cluster.requests
        self.assertEqual(len(requests), 2, requests)
        self.assertEqual(requests[0][0], "PATCH", requests)
        self.assertIn(f"/namespaces/{ns}/", requests[0][1])
        self.assertIn("fieldManager=eks-canary", requests[0][1])
        self.assertEqual(requests[1], ("GET", f"/api/v1/namespaces/{ns}"))

        # rollback, as the state machine's Catch calls it: ends A without the cluster
        seen = len(self.cluster.requests)
        caught = dict(doc_a, error={"Error": error["errorType"], "Cause": json.dumps(error)})
        ended = self.answered("rollback", caught)["deployment"]
        self.assertEqual(len(self.cluster.requests), seen, "rollback reached the cluster")
        self.assertEqual((ended["next"], ended["outcome"]["status"]), ("done", "rolled_back"), ended)
        self.assertIn(f"{service}-{version_a} was not deployed", ended["outcome"]["reason"])
        self.assertIn(f"namespace {ns} does not exist", ended["outcome"]["reason"])
        record = self.read(spec, f"history/{version_a}.json")
        self.assertEqual(record["outcome"], ended["outcome"])
        self.assertIsNone(self.read(spec, "state.json").get("in_progress"))
        self.assert_released_by(spec, exec_a, "rollback")

        # deployment B: render, one health check, a shift, the promotion
        spec_b = deploy_json(2)
        exec_b = execution_arn(f"yelb_{service}_qemu-b")
        doc_b = self.answered("render-template", {"deploy": spec_b, "execution": exec_b})
        version_b = doc_b["deployment"]["canary_version"]
        self.assertGreater(version_b, version_a)
        self.assertEqual(self.lock_holder(spec_b), exec_b)
        self.assertEqual(self.read(spec_b, "state.json")["in_progress"]["execution"], exec_b)

        # health-check: one check from moto's CloudWatch (no errors, no datapoints),
        # then back to the state machine's Wait (no inline wait: the environment says 0)
        checked = self.answered("health-check", doc_b)
        d = checked["deployment"]
        self.assertEqual((d["checks"], d["verdict"]["status"], d["next"]), (1, "healthy", "check"), d)
        self.assertEqual(d["verdict"]["window_seconds"], spec_b["failure_threshold_time"])

        # shift-weights: the first deployment's route is created by its first shift;
        # the cluster refuses it (the router names the object and the API's answer)
        seen = len(self.cluster.requests)
        self.refused("shift-weights", checked, "KubeError", f"{ns}/{service}", "404")
        requests = self.cluster.requests[seen:]
        self.assertTrue(requests and all(f"/namespaces/{ns}/" in path for _, path in requests), requests)

        # cleanup, through EKS (moto's DescribeCluster): a first deployment has no old
        # version to remove, so it promotes B without a request to the cluster
        seen = len(self.cluster.requests)
        promoted = self.answered("cleanup", checked)["deployment"]
        self.assertEqual(len(self.cluster.requests), seen, "cleanup reached the kubeconfig's cluster")
        self.assertEqual((promoted["next"], promoted["outcome"]["status"]), ("done", "promoted"), promoted)
        record_b = self.read(spec_b, f"history/{version_b}.json")
        self.assertEqual(record_b["outcome"], promoted["outcome"])
        self.assertEqual(record_b["image"], spec_b["container_image"])
        state = self.read(spec_b, "state.json")
        self.assertEqual((state.get("stable_version"), state.get("in_progress")), (version_b, None), state)
        self.assert_released_by(spec_b, exec_b, "cleanup")

        # the notifications, through SNS: A started and rolled back, B started and promoted
        self.assertEqual(
            [(n["metadata"]["eventType"], n["metadata"]["relatedResources"]) for n in self.notifications()],
            [
                ("Canary Started", [exec_a]),
                ("Canary Rolled Back", [exec_a]),
                ("Canary Started", [exec_b]),
                ("Canary Promoted", [exec_b]),
            ],
        )

        self.assertEqual(sorted(self.processes), sorted(common.FUNCTIONS))
        for f, p in self.processes.items():
            self.assertEqual((p.api.unknown, p.api.init_errors), ([], []), f"{f} under the Runtime API")

if __name__ == "__main__":
    unittest.main()
