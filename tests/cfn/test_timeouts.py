"""Task timeouts against function timeouts, across statemachine/canary-deployment.asl.json
and cloudformation/shared.yaml, whatever the definition's shape: every Task that invokes
one of the functions gives up later than the function itself, by a margin.

Why: when a Task's TimeoutSeconds runs out while its Lambda invocation still runs, Step
Functions' Retry starts a second invocation beside the first (a Task timeout does not stop
the function). Two handlers of one deployment at once could write the route or the record
twice. With the function's Timeout well under the Task's, the function is always stopped
by Lambda first, and the Task sees Sandbox.Timedout / Lambda.Unknown, not States.Timeout.

MARGIN: the invocation's start before the function's clock runs (a cold start's init:
Lambda allows it up to 10 s; these Rust bootstraps take well under one) and the Invoke
call's own round trip."""

import re
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402

MARGIN = 10


def tasks(states: dict, path: str = ""):
    """(path, state) of every Task, in nested Parallel branches and Map processors too."""
    for name, state in states.items():
        here = f"{path}{name}"
        if state.get("Type") == "Task":
            yield here, state
        for i, branch in enumerate(state.get("Branches", [])):
            yield from tasks(branch["States"], f"{here}.Branches[{i}].")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from tasks(state[key]["States"], f"{here}.{key}.")


def placeholder(state: dict) -> str | None:
    """The ${...FunctionArn} substitution a Task invokes: its Resource, or the FunctionName
    of an arn:aws:states:::lambda:invoke integration (Parameters or Arguments)."""
    candidates = [state.get("Resource", "")]
    for key in ("Parameters", "Arguments"):
        args = state.get(key) or {}
        if isinstance(args, dict):
            candidates += [v for k, v in args.items() if k.startswith("FunctionName") and isinstance(v, str)]
    for c in candidates:
        m = re.search(r"\$\{([A-Za-z0-9]+FunctionArn)\}", c)
        if m:
            return m.group(1)
    return None


def violations(definition: dict, template: dict, margin: int = MARGIN) -> list[str]:
    """Every Task that may still be waiting while its function runs, as sentences."""
    resources = template["Resources"]
    subs = resources["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    out = []
    seen = 0
    for path, state in tasks(definition["States"]):
        key = placeholder(state)
        if key is None:
            continue
        seen += 1
        target = subs.get(key)
        if not (isinstance(target, dict) and "Fn::GetAtt" in target):
            out.append(f"{path}: ${{{key}}} is not a function of shared.yaml's DefinitionSubstitutions")
            continue
        function = target["Fn::GetAtt"][0]
        timeout = resources[function]["Properties"].get("Timeout", 3)  # Lambda's default
        task_timeout = state.get("TimeoutSeconds")
        if not isinstance(task_timeout, int):
            out.append(f"{path}: no literal TimeoutSeconds (its function {function} has Timeout {timeout})")
        elif task_timeout < timeout + margin:
            out.append(
                f"{path}: TimeoutSeconds {task_timeout} is not at least {margin} s over {function}'s Timeout "
                f"{timeout}: a retry could overlap a call still running"
            )
    if seen == 0:
        out.append("no Task invokes a function: the definition's shape is not understood")
    return out


class TaskTimeouts(unittest.TestCase):
    def test_every_task_outlasts_its_function_by_the_margin(self):
        problems = violations(common.load_asl(), common.load(common.CFN_DIR / "shared.yaml"))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_every_function_is_invoked_by_some_task(self):
        subs = common.load(common.CFN_DIR / "shared.yaml")["Resources"]["StateMachine"]["Properties"][
            "DefinitionSubstitutions"
        ]
        used = {placeholder(s) for _, s in tasks(common.load_asl()["States"])}
        self.assertEqual(used - {None}, set(subs))

    def test_the_check_finds_an_equal_timeout_a_missing_one_and_a_nested_task(self):
        template = common.load(common.CFN_DIR / "shared.yaml")
        timeout = template["Resources"]["DeployCanaryFunction"]["Properties"]["Timeout"]
        definition = {
            "States": {
                "Equal": {"Type": "Task", "Resource": "${DeployCanaryFunctionArn}", "TimeoutSeconds": timeout},
                "Missing": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Arguments": {"FunctionName": "${CleanupFunctionArn}"},
                },
                "Fine": {"Type": "Task", "Resource": "${DeployCanaryFunctionArn}", "TimeoutSeconds": timeout + MARGIN},
                "Par": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "States": {
                                "Inner": {
                                    "Type": "Task",
                                    "Resource": "arn:aws:states:::lambda:invoke",
                                    "Parameters": {"FunctionName": "${RollbackFunctionArn}:$LATEST"},
                                    "TimeoutSeconds": 1,
                                }
                            }
                        }
                    ],
                },
            }
        }
        problems = violations(definition, template)
        self.assertEqual([p.split(":")[0] for p in problems], ["Equal", "Missing", "Par.Branches[0].Inner"])


if __name__ == "__main__":
    unittest.main()
