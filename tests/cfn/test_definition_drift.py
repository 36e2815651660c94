"""The state machine in the shared stack is statemachine/canary-deployment.asl.json:
read from the uploaded file (never copied into the template), with every placeholder
substituted by the function it names, and the packaging uploads that file to the key
the stack reads."""

import json
import re
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402


class DefinitionDrift(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = common.load(common.CFN_DIR / "shared.yaml")
        machines = [r for r in cls.t["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
        assert len(machines) == 1, "shared.yaml must hold exactly one state machine"
        cls.sm = machines[0]["Properties"]

    def test_the_definition_file_exists_and_is_json(self):
        self.assertTrue(common.ASL_FILE.is_file(), f"{common.ASL_FILE} is missing")
        self.assertIn("States", common.load_asl())

    def test_the_template_holds_no_copy_of_the_definition(self):
        for key in ("Definition", "DefinitionString"):
            self.assertNotIn(key, self.sm)
        raw = (common.CFN_DIR / "shared.yaml").read_text()
        for state in common.load_asl()["States"]:
            self.assertNotRegex(raw, rf"\b{re.escape(state)}\s*:\s*$", f"state {state} appears in the template")

    def test_the_stack_reads_the_file_the_package_script_uploads(self):
        loc = self.sm["DefinitionS3Location"]
        self.assertEqual(loc["Bucket"], {"Ref": "ArtifactsBucketName"})
        self.assertEqual(loc["Key"], {"Fn::Sub": "${ArtifactsPrefix}/" + common.ASL_FILE.name})
        package = (common.SCRIPTS / "package").read_text()
        shared_sh = (common.SCRIPTS / "_common.sh").read_text()
        self.assertIn(f'ASL_FILE="statemachine/{common.ASL_FILE.name}"', shared_sh)
        self.assertIn(f'cp "$ASL_FILE" "$OUT/{common.ASL_FILE.name}"', package)
        self.assertIn(f'"s3://$UPLOAD_BUCKET/$prefix/{common.ASL_FILE.name}"', package)

    def test_every_placeholder_has_a_substitution_and_every_substitution_a_placeholder(self):
        subs = set(self.sm["DefinitionSubstitutions"])
        placeholders = common.asl_placeholders()
        self.assertEqual(placeholders - subs, set(), "placeholders in the ASL with no DefinitionSubstitutions key")
        self.assertEqual(subs - placeholders, set(), "DefinitionSubstitutions keys the ASL never uses")

    def test_each_substitution_is_the_arn_of_the_function_it_names(self):
        for key, value in self.sm["DefinitionSubstitutions"].items():
            with self.subTest(placeholder=key):
                m = re.fullmatch(r"([A-Za-z]+)FunctionArn", key)
                self.assertIsNotNone(m, key)
                self.assertEqual(value, {"Fn::GetAtt": [m.group(1) + "Function", "Arn"]})

    def test_every_task_resource_in_the_asl_is_a_placeholder(self):
        def tasks(states):
            for name, state in states.items():
                if state.get("Type") == "Task":
                    yield name, state
                for branch in state.get("Branches", []):
                    yield from tasks(branch["States"])
                if "Iterator" in state:
                    yield from tasks(state["Iterator"]["States"])
                if "ItemProcessor" in state:
                    yield from tasks(state["ItemProcessor"]["States"])

        found = list(tasks(common.load_asl()["States"]))
        self.assertGreaterEqual(len(found), 6)
        for name, state in found:
            target = state.get("Parameters", state.get("Arguments", {})).get("FunctionName", state["Resource"])
            with self.subTest(state=name):
                self.assertRegex(json.dumps(target), r"\$\{[A-Za-z]+FunctionArn\}")


if __name__ == "__main__":
    unittest.main()
