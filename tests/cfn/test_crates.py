"""Every function in the shared stack is a crate under crates/ (by name), and every
Lambda crate has a function in the stack, packaged by scripts/package under its name."""

import re
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402


def stack_functions() -> dict[str, dict]:
    t = common.load(common.CFN_DIR / "shared.yaml")
    out = {}
    for name, res in t["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        fn_name = res["Properties"]["FunctionName"]["Fn::Sub"]
        m = re.fullmatch(r"\$\{AWS::StackName\}-([a-z-]+)", fn_name)
        assert m, f"{name}: FunctionName {fn_name} is not ${{AWS::StackName}}-<crate>"
        out[m.group(1)] = res["Properties"] | {"_logical": name}
    return out


def package_name(cargo_toml: str) -> str | None:
    m = re.search(r'(?ms)^\[package\].*?^name\s*=\s*"([^"]+)"', cargo_toml)
    return m.group(1) if m else None


def lambda_crates() -> set[str]:
    """Crates whose binary is a Lambda function: its main.rs runs the Lambda runtime loop
    (`lambda_runtime::run`, or canary-lambda's `runtime::serve`, which wraps it)."""
    found = set()
    for main in (common.ROOT / "crates").glob("*/src/main.rs"):
        if re.search(r"lambda_runtime::run\b|runtime::serve\b", main.read_text()):
            found.add(main.parent.parent.name)
    return found


class CratesMatchStack(unittest.TestCase):
    def test_the_stack_has_exactly_the_six_functions(self):
        self.assertEqual(sorted(stack_functions()), sorted(common.FUNCTIONS))

    def test_every_function_in_the_stack_has_a_crate_of_that_name(self):
        for f in stack_functions():
            with self.subTest(function=f):
                toml = common.ROOT / "crates" / f / "Cargo.toml"
                self.assertTrue(toml.is_file(), f"crates/{f}/Cargo.toml is missing")
                self.assertEqual(package_name(toml.read_text()), f)
                self.assertTrue((toml.parent / "src" / "main.rs").is_file(), f"crates/{f}/src/main.rs is missing")

    def test_every_lambda_crate_has_a_function_in_the_stack(self):
        self.assertEqual(lambda_crates() - set(stack_functions()), set())

    def test_each_function_runs_its_own_zip_on_arm64_provided_al2023(self):
        for f, props in stack_functions().items():
            with self.subTest(function=f):
                self.assertEqual(props["Runtime"], "provided.al2023")
                self.assertEqual(props["Architectures"], ["arm64"])
                self.assertEqual(props["Handler"], "bootstrap")
                self.assertEqual(props["Code"]["S3Key"], {"Fn::Sub": "${ArtifactsPrefix}/" + f + ".zip"})
                self.assertEqual(props["Code"]["S3Bucket"], {"Ref": "ArtifactsBucketName"})
                self.assertIn(props["MemorySize"], range(128, 1025))
                # Up to 180 s: a task may watch readiness or check for 60 s and then wait up to
                # route_confirm_timeout (at most 90 s) for the route controller.
                self.assertIn(props["Timeout"], range(10, 181))
                self.assertNotIn("Layers", props)

    def test_the_package_script_builds_the_same_six(self):
        text = (common.SCRIPTS / "_common.sh").read_text()
        m = re.search(r"(?m)^FUNCTIONS=\(([^)]*)\)", text)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1).split(), common.FUNCTIONS)
        self.assertEqual(sorted(common.FUNCTIONS), sorted(stack_functions()))


if __name__ == "__main__":
    unittest.main()
