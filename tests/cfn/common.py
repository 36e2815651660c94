"""Shared helpers for the CloudFormation tests: paths, template loading, policy walking.

Templates are read with cfn-lint's own decoder (PyPI `cfn-lint`), which understands
the short intrinsic-function tags (!Sub, !GetAtt...) and returns plain dicts with the
long forms (Fn::Sub, Fn::GetAtt...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFN_DIR = ROOT / "cloudformation"
ASL_FILE = ROOT / "statemachine" / "canary-deployment.asl.json"
SCRIPTS = ROOT / "scripts"

# The one opt-out from "a missing peer fails the test" (canary-testkit's peer.rs has the
# same rule for the Rust tests): peer names separated by commas, or 1 (or all) for every peer.
ALLOW_MISSING_PEERS = "EKS_CANARY_ALLOW_MISSING_PEERS"
# How to install the Python tools the tests use (pinned there).
PIP_REQUIREMENTS = "pip install -r tests/requirements.txt"

# The six Lambda functions: crate = binary = zip = function-name suffix.
FUNCTIONS = ["render-template", "deploy-canary", "shift-weights", "health-check", "rollback", "cleanup"]
# Those whose roles call the Kubernetes API (eks:DescribeCluster + an access entry).
# health-check does since it makes the shift that follows a check ending a step.
KUBE_FACING = ["deploy-canary", "shift-weights", "health-check", "rollback", "cleanup"]


def logical(function: str) -> str:
    """render-template -> RenderTemplate (the logical-id stem in shared.yaml)."""
    return "".join(part.capitalize() for part in function.split("-"))


def cfn_templates() -> list[Path]:
    """Every CloudFormation template under cloudformation/ (k8s-rbac.yaml is Kubernetes YAML)."""
    return sorted(p for p in CFN_DIR.glob("*.yaml") if "AWSTemplateFormatVersion" in p.read_text())


def load(path: Path | str) -> dict:
    from cfnlint.decode import decode  # imported late: a clear ImportError names the package

    path = Path(path)
    template, matches = decode(str(path))
    if matches:
        raise AssertionError(f"{path.name} does not parse: {[str(m) for m in matches]}")
    # Round-trip through JSON: plain dicts/lists/strings, no line-number node types.
    return json.loads(json.dumps(template))


def load_asl() -> dict:
    return json.loads(ASL_FILE.read_text())


def asl_placeholders() -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL_FILE.read_text()))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def strip_if(value):
    """Both branches of every Fn::If, flattened (AWS::NoValue dropped): what may be deployed."""
    if isinstance(value, dict) and list(value) == ["Fn::If"]:
        out = []
        for branch in value["Fn::If"][1:]:
            if branch == {"Ref": "AWS::NoValue"}:
                continue
            out.extend(as_list(strip_if(branch)))
        return out
    return value


def flat(value) -> list:
    """A list whose items may be Fn::If: every item that may be deployed."""
    out = []
    for item in as_list(value):
        out.extend(as_list(strip_if(item)))
    return out


def policy_documents(template: dict):
    """Yields (where, document) for every IAM and bucket policy document in the template."""
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        kind = res.get("Type")
        if kind == "AWS::IAM::Role":
            yield f"{name}.AssumeRolePolicyDocument", props["AssumeRolePolicyDocument"]
            for p in flat(props.get("Policies", [])):
                yield f"{name}.{p.get('PolicyName')}", p["PolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            yield name, props["PolicyDocument"]
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
            yield name, props["PolicyDocument"]


def statements(document: dict):
    yield from flat(document.get("Statement", []))


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("cwd", ROOT)
    return subprocess.run(cmd, **kw)


def env_without_aws_secrets() -> dict:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("AWS_"):
            del env[k]
    return env


def allows_missing(setting: str, peer: str) -> bool:
    """Whether `setting` (the value of EKS_CANARY_ALLOW_MISSING_PEERS) allows `peer` to be missing."""
    names = [n.strip() for n in setting.split(",")]
    return any(n == "1" or n.lower() == "all" or (n and n == peer) for n in names)


def require_peer(peer: str, present, install: str) -> None:
    """A test needs `peer` (found or not by the caller: `present`). Missing, it fails the
    test with how to install it; only EKS_CANARY_ALLOW_MISSING_PEERS lets the test not run
    instead, and then it says so on stderr ("NOT RUN: ...") and is counted as skipped."""
    if present:
        return
    setting = os.environ.get(ALLOW_MISSING_PEERS, "")
    if allows_missing(setting, peer):
        message = (
            f"NOT RUN: {peer} is not installed and {ALLOW_MISSING_PEERS}={setting} allows that, "
            f"so this test checked nothing (install: {install})"
        )
        print(f"\n{message}", file=sys.stderr)
        raise unittest.SkipTest(message)
    raise AssertionError(
        f"{peer} is not installed: {install}, or run scripts/test, which installs it "
        f"(only to let this test not run, set {ALLOW_MISSING_PEERS}={peer})"
    )


# qemu-user for the packaged arm64 bootstraps (tests/cfn/test_bootstrap_qemu.py): Debian's
# statically linked emulator, and the arm64 glibc it loads them with (`-L`, the sysroot
# of Debian's cross packages: no `dpkg --add-architecture` needed).
QEMU_AARCH64 = "qemu-aarch64-static"
ARM64_SYSROOT = Path("/usr/aarch64-linux-gnu")
ARM64_LOADER = ARM64_SYSROOT / "lib" / "ld-linux-aarch64.so.1"


def require_qemu_arm64() -> list[str]:
    """The command prefix that runs an arm64 glibc binary here (qemu-aarch64-static -L the
    arm64 sysroot); a missing emulator or libc fails the test naming its apt package."""
    import shutil

    qemu = shutil.which(QEMU_AARCH64)
    require_peer(QEMU_AARCH64, qemu, "apt-get install qemu-user-static")
    require_peer("libc6-arm64-cross", ARM64_LOADER.is_file(), "apt-get install libc6-arm64-cross")
    return [str(qemu), "-L", str(ARM64_SYSROOT)]
