"""scripts/package: six zips, each exactly one executable `bootstrap` for aarch64,
checksums, a deterministic build id; a wrong-architecture binary is refused.

The fast tests feed the script stand-in binaries (a hand-made ELF header), so CI needs
no cross toolchain. With CANARY_PACKAGE_BUILD=1 the real cargo-lambda build runs too
(minutes of compiling: the six Lambda crates must exist), once per run: the zips it
makes are also started under qemu-user (test_bootstrap_qemu.py)."""

import atexit
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

EM_AARCH64, EM_X86_64 = 0xB7, 0x3E


def fake_elf(machine: int, e_type: int = 3) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHI", e_type, machine, 1) + bytes(64 - 16 - 8) + b"stand-in"


def check_dist(test: unittest.TestCase, out: Path) -> None:
    for f in common.FUNCTIONS:
        with zipfile.ZipFile(out / "lambda" / f"{f}.zip") as z:
            test.assertEqual(z.namelist(), ["bootstrap"])
            info = z.getinfo("bootstrap")
            test.assertEqual((info.external_attr >> 16) & 0o777, 0o755)
            data = z.read("bootstrap")
            test.assertEqual(data[:4], b"\x7fELF")
            test.assertEqual(struct.unpack_from("<H", data, 18)[0], EM_AARCH64, f"{f} is not aarch64")
    test.assertEqual((out / "canary-deployment.asl.json").read_bytes(), common.ASL_FILE.read_bytes())
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    listed = {line.split()[1] for line in (out / "SHA256SUMS").read_text().splitlines()}
    test.assertLessEqual({f"lambda/{f}.zip" for f in common.FUNCTIONS} | {"canary-deployment.asl.json"}, listed)
    build_id = (out / "BUILD_ID").read_text().strip()
    test.assertEqual(build_id, hashlib.sha256((out / "SHA256SUMS").read_bytes()).hexdigest()[:12])


class PackageWithStandIns(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.src = self.root / "lambda"
        for i, f in enumerate(common.FUNCTIONS):
            (self.src / f).mkdir(parents=True)
            data = fake_elf(EM_AARCH64)
            if i % 2:  # half as cargo-lambda zips, half as plain binaries
                with zipfile.ZipFile(self.src / f / "bootstrap.zip", "w") as z:
                    z.writestr("bootstrap", data)
            else:
                (self.src / f / "bootstrap").write_bytes(data)
        self.cli = self.root / "canary"
        self.cli.write_bytes(fake_elf(EM_X86_64, 2))

    def tearDown(self):
        self.tmp.cleanup()

    def package(self, out: Path, *extra):
        return common.run(
            [str(common.SCRIPTS / "package"), "--no-build", "--from", str(self.src), "--out", str(out), *extra]
        )

    def test_six_aarch64_zips_checksums_and_the_definition(self):
        out = self.root / "dist"
        r = self.package(out, "--cli", str(self.cli))
        self.assertEqual(r.returncode, 0, r.stderr)
        check_dist(self, out)
        self.assertTrue((out / "tools" / "canary-linux-x86_64").stat().st_mode & 0o100)
        r = subprocess.run(["sha256sum", "-c", "canary-linux-x86_64.sha256"], cwd=out / "tools", capture_output=True)
        self.assertEqual(r.returncode, 0)

    def test_the_same_binaries_give_the_same_build_id(self):
        a, b = self.root / "a", self.root / "b"
        self.assertEqual(self.package(a, "--no-cli").returncode, 0)
        self.assertEqual(self.package(b, "--no-cli").returncode, 0)
        self.assertEqual((a / "BUILD_ID").read_text(), (b / "BUILD_ID").read_text())
        self.assertEqual((a / "lambda" / "cleanup.zip").read_bytes(), (b / "lambda" / "cleanup.zip").read_bytes())

    def test_an_x86_64_bootstrap_is_refused(self):
        (self.src / "render-template" / "bootstrap").write_bytes(fake_elf(EM_X86_64))
        r = self.package(self.root / "dist", "--no-cli")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("`render-template` is built for e_machine 0x3E, not aarch64 (0xB7)", r.stderr)

    def test_a_zip_holding_more_than_bootstrap_is_refused(self):
        with zipfile.ZipFile(self.src / "shift-weights" / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", fake_elf(EM_AARCH64))
            z.writestr("extra.txt", "x")
        r = self.package(self.root / "dist", "--no-cli")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not exactly ['bootstrap']", r.stderr)

    def test_a_missing_function_is_refused(self):
        for leftover in (self.src / "rollback").iterdir():
            leftover.unlink()
        r = self.package(self.root / "dist", "--no-cli")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no build of `rollback`", r.stderr)


REAL_BUILD = os.environ.get("CANARY_PACKAGE_BUILD") == "1"
REAL_BUILD_SKIP = "set CANARY_PACKAGE_BUILD=1 for the real arm64 build"
# A dist/ made before by `scripts/package --out DIR --no-cli`, used instead of building
# again (for running the tests of the built zips by hand; scripts/test never sets it).
DIST_ENV = "CANARY_PACKAGE_DIST"
_real_dist: dict[str, Path] = {}


def real_build_dist() -> Path:
    """The real arm64 build (scripts/package --no-cli), made once per test run and shared
    by the tests of the built zips (here and test_bootstrap_qemu.py); $CANARY_PACKAGE_DIST
    names one already made instead."""
    if "dist" in _real_dist:
        return _real_dist["dist"]
    if "failed" in _real_dist:  # not built twice in one run
        raise AssertionError(str(_real_dist["failed"]))
    given = os.environ.get(DIST_ENV)
    if given:
        out = Path(given).resolve()
        if not (out / "SHA256SUMS").is_file():
            raise AssertionError(f"{DIST_ENV}={given} is not a scripts/package output (no SHA256SUMS)")
    else:
        tmp = tempfile.TemporaryDirectory()
        atexit.register(tmp.cleanup)
        out = Path(tmp.name) / "dist"
        r = common.run([str(common.SCRIPTS / "package"), "--out", str(out), "--no-cli"], capture_output=False)
        if r.returncode != 0:
            _real_dist["failed"] = (
                f"scripts/package --no-cli failed with exit status {r.returncode} (its output is above)"
            )
            raise AssertionError(_real_dist["failed"])
    _real_dist["dist"] = out
    return out


@unittest.skipUnless(REAL_BUILD, REAL_BUILD_SKIP)
class PackageRealBuild(unittest.TestCase):
    def test_cargo_lambda_builds_six_arm64_bootstraps(self):
        check_dist(self, real_build_dist())


if __name__ == "__main__":
    unittest.main()
