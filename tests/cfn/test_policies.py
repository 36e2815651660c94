"""Least privilege: no wildcard actions in any Allow, every Allow scoped to resources,
with "*" only for the actions that AWS offers no resource-level permission for."""

import json
import re
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402

# Actions that support no resource-level permissions (IAM service authorization
# reference): the only ones an Allow may grant on Resource "*". Each is explained in a
# comment beside its statement in the template.
STAR_RESOURCE_ACTIONS = {
    "cloudwatch:GetMetricData",  # health-check reads the 5xx/2xx metrics
    # health-check finds each version's VPC Lattice target group (EnableLatticeMetrics=true);
    # neither action has a resource type, ListTagsForResource included
    "vpc-lattice:ListTargetGroups",
    "vpc-lattice:ListTagsForResource",
    "ecr:GetAuthorizationToken",  # CodeBuild's docker login
    # Lambda's checks before it attaches a function to SubnetIds (only under InVpc)
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",  # optional tracing
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions execution logging (CloudWatch Logs log-delivery API)
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}

# A "*" inside a resource ARN is allowed only in these scoped forms.
SCOPED_WILDCARDS = [
    r"^\$\{[A-Za-z]+Function\.Arn\}:\*$",  # a function's versions and aliases
    r"^arn:\$\{AWS::Partition\}:s3:::\$\{ArtifactsBucketName\}/state/\*$",  # the state prefix
    r"^\$\{ArtifactBucket\.Arn\}/\*$",  # the pipeline's own artifact bucket
    r"^\$\{AccessLogsBucket\.Arn\}/s3-access/\*$",  # S3 log delivery into the access-logs bucket
    # the functions' network interfaces (under InVpc): this account and region only
    r"^arn:\$\{AWS::Partition\}:ec2:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(network-interface|subnet|security-group)/\*$",
    r"^arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:execution:\$\{Name\}:\*$",
    # the shared stack's own state machine's executions (by name: a Ref would be circular)
    r"^arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:execution:\$\{AWS::StackName\}-canary-deployment:\*$",
]

ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


def all_statements():
    for path in common.cfn_templates():
        template = common.load(path)
        for where, doc in common.policy_documents(template):
            for st in common.statements(doc):
                yield path.name, where, st


class Policies(unittest.TestCase):
    def test_no_allow_grants_a_wildcard_action(self):
        seen = 0
        for name, where, st in all_statements():
            self.assertNotIn("NotAction", st, f"{name} {where}: NotAction")
            if st.get("Effect") != "Allow":
                continue
            for action in common.as_list(st["Action"]):
                seen += 1
                with self.subTest(template=name, policy=where, action=action):
                    self.assertIsInstance(action, str)
                    self.assertNotIn("*", action, f"{name} {where}: wildcard action {action}")
                    self.assertRegex(action, ACTION)
        self.assertGreater(seen, 50)

    def test_wildcards_appear_only_in_deny_statements_that_refuse_plain_http(self):
        for name, where, st in all_statements():
            actions = common.as_list(st.get("Action", []))
            if any("*" in a for a in actions if isinstance(a, str)):
                with self.subTest(template=name, policy=where):
                    self.assertEqual(st["Effect"], "Deny")
                    self.assertEqual(st["Condition"], {"Bool": {"aws:SecureTransport": "false"}})

    def test_every_allow_is_scoped_and_star_only_for_actions_without_resource_types(self):
        for name, where, st in all_statements():
            if st.get("Effect") != "Allow" or "Principal" in st:
                continue
            self.assertNotIn("NotResource", st, f"{name} {where}")
            resources = common.as_list(st["Resource"])
            actions = set(common.as_list(st["Action"]))
            with self.subTest(template=name, policy=where, sid=st.get("Sid")):
                if "*" in resources:
                    self.assertEqual(resources, ["*"])
                    self.assertLessEqual(
                        actions,
                        STAR_RESOURCE_ACTIONS,
                        f"{name} {where}: Resource '*' for {sorted(actions - STAR_RESOURCE_ACTIONS)}",
                    )
                for r in resources:
                    if r == "*":
                        continue
                    text = r if isinstance(r, str) else r.get("Fn::Sub")
                    if isinstance(text, list):
                        text = text[0]
                    if not isinstance(text, str) or "*" not in text:
                        continue  # a Ref / GetAtt / ImportValue of one resource
                    self.assertTrue(
                        any(re.search(p, text) for p in SCOPED_WILDCARDS),
                        f"{name} {where}: {text} is a wildcard outside the known scoped forms",
                    )

    def test_role_trust_policies_name_one_service_and_this_account(self):
        for path in common.cfn_templates():
            for where, doc in common.policy_documents(common.load(path)):
                if not where.endswith("AssumeRolePolicyDocument"):
                    continue
                for st in common.statements(doc):
                    with self.subTest(template=path.name, role=where):
                        self.assertEqual(st["Action"], "sts:AssumeRole")
                        self.assertEqual(list(st["Principal"]), ["Service"])
                        self.assertEqual(
                            st["Condition"], {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                        )


class SharedStackRoles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = common.load(common.CFN_DIR / "shared.yaml")

    def role_statements(self, function):
        role = self.t["Resources"][common.logical(function) + "Role"]
        out = []
        for pol in common.flat(role["Properties"]["Policies"]):
            out.extend(common.statements(pol["PolicyDocument"]))
        return out

    def test_each_function_has_its_own_role(self):
        roles = {
            self.t["Resources"][common.logical(f) + "Function"]["Properties"]["Role"]["Fn::GetAtt"][0]
            for f in common.FUNCTIONS
        }
        self.assertEqual(len(roles), 6)

    def test_only_the_kubernetes_facing_functions_may_describe_clusters_and_only_the_named_ones(self):
        for f in common.FUNCTIONS:
            sts = [s for s in self.role_statements(f) if "eks:DescribeCluster" in common.as_list(s["Action"])]
            with self.subTest(function=f):
                if f in common.KUBE_FACING:
                    self.assertEqual(len(sts), 1)
                    self.assertEqual(sts[0]["Action"], "eks:DescribeCluster")
                    self.assertEqual(sts[0]["Resource"], {"Ref": "ClusterArns"})
                else:
                    self.assertEqual(sts, [])

    def test_s3_object_access_is_limited_to_the_state_prefix(self):
        for f in common.FUNCTIONS:
            for s in self.role_statements(f):
                actions = common.as_list(s["Action"])
                if not any(a.startswith("s3:") for a in actions):
                    continue
                with self.subTest(function=f, sid=s.get("Sid")):
                    text = json.dumps(s["Resource"])
                    if actions == ["s3:ListBucket"]:
                        self.assertEqual(
                            s["Condition"], {"StringLikeIfExists": {"s3:prefix": ["state/*"]}}
                        )
                        self.assertTrue(text.endswith(':::${ArtifactsBucketName}"}'), text)
                    else:
                        self.assertIn("${ArtifactsBucketName}/state/*", text)
                        self.assertLessEqual(set(actions), {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"})

    def test_only_the_lock_takers_and_finishers_may_delete_state_and_only_health_check_reads_metrics(self):
        # render-template deletes a stale abort marker (canary-store `begin`); rollback
        # and cleanup delete it when they finish.
        for f in common.FUNCTIONS:
            actions = {a for s in self.role_statements(f) for a in common.as_list(s["Action"])}
            with self.subTest(function=f):
                self.assertEqual("s3:DeleteObject" in actions, f in ("render-template", "rollback", "cleanup"))
                self.assertEqual("cloudwatch:GetMetricData" in actions, f == "health-check")

    def conditional_statement(self, function, condition):
        """The statement of `function`'s role that only Fn::If `condition` adds (with
        AWS::NoValue otherwise), or None."""
        role = self.t["Resources"][common.logical(function) + "Role"]
        found = []
        for pol in common.flat(role["Properties"]["Policies"]):
            for item in pol["PolicyDocument"]["Statement"]:
                if isinstance(item, dict) and list(item) == ["Fn::If"]:
                    cond, yes, no = item["Fn::If"]
                    if cond == condition:
                        self.assertEqual(no, {"Ref": "AWS::NoValue"}, f"{function}: {condition} adds a statement either way")
                        found.append(yes)
        self.assertLessEqual(len(found), 1, f"{function}: {condition} guards {len(found)} statements")
        return found[0] if found else None

    def test_only_health_check_may_query_prometheus_and_only_the_listed_workspaces(self):
        for f in common.FUNCTIONS:
            aps = [s for s in self.role_statements(f) if any(a.startswith("aps:") for a in common.as_list(s["Action"]))]
            with self.subTest(function=f):
                if f != "health-check":
                    self.assertEqual(aps, [])
                    self.assertIsNone(self.conditional_statement(f, "HasPrometheusWorkspaces"))
                    continue
                st = self.conditional_statement(f, "HasPrometheusWorkspaces")
                self.assertEqual(aps, [st], "the aps statement is the conditional one, and the only one")
                self.assertEqual(st["Action"], "aps:QueryMetrics")
                self.assertEqual(st["Resource"], {"Ref": "PrometheusWorkspaceArns"})
                self.assertNotIn("Condition", st)
        self.assertEqual(
            self.t["Conditions"]["HasPrometheusWorkspaces"],
            {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "PrometheusWorkspaceArns"}]}, ""]}]},
        )

    def test_only_health_check_may_find_lattice_target_groups_and_only_with_read_calls(self):
        for f in common.FUNCTIONS:
            lattice = [
                s for s in self.role_statements(f) if any(a.startswith("vpc-lattice") for a in common.as_list(s["Action"]))
            ]
            with self.subTest(function=f):
                if f != "health-check":
                    self.assertEqual(lattice, [])
                    self.assertIsNone(self.conditional_statement(f, "LatticeMetricsEnabled"))
                    continue
                st = self.conditional_statement(f, "LatticeMetricsEnabled")
                self.assertEqual(lattice, [st])
                self.assertEqual(st["Action"], ["vpc-lattice:ListTargetGroups", "vpc-lattice:ListTagsForResource"])
                self.assertEqual(st["Resource"], "*")
                self.assertEqual(st["Condition"], {"StringEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}})
        self.assertEqual(
            self.t["Conditions"]["LatticeMetricsEnabled"], {"Fn::Equals": [{"Ref": "EnableLatticeMetrics"}, "true"]}
        )
        self.assertEqual(self.t["Parameters"]["EnableLatticeMetrics"]["Default"], "false")

    def test_the_workspace_pattern_takes_workspace_arns_and_the_empty_default_only(self):
        param = self.t["Parameters"]["PrometheusWorkspaceArns"]
        self.assertEqual((param["Type"], param["Default"]), ("CommaDelimitedList", ""))
        pattern = re.compile(param["AllowedPattern"])  # applied to each item by CloudFormation
        for good in (
            "",
            "arn:aws:aps:eu-west-1:111122223333:workspace/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            "arn:aws-cn:aps:cn-north-1:111122223333:workspace/ws-1",
            "arn:aws-us-gov:aps:us-gov-west-1:111122223333:workspace/ws-a.b_c",
        ):
            with self.subTest(item=good):
                self.assertRegex(good, pattern)
        for bad in (
            "*",
            "arn:aws:aps:eu-west-1:111122223333:workspace/*",
            "arn:aws:aps:eu-west-1:111122223333:*",
            "arn:aws:aps:eu-west-1:111122223333:rulegroupsnamespace/ws-1/rules",
            "arn:aws:aps:eu-west-1:1111:workspace/ws-1",
            "arn:aws:eks:eu-west-1:111122223333:workspace/ws-1",
            "ws-0a1b2c3d",
            " arn:aws:aps:eu-west-1:111122223333:workspace/ws-1",
        ):
            with self.subTest(item=bad):
                self.assertNotRegex(bad, pattern)

    def test_only_health_check_gets_the_prometheus_credentials_and_only_when_given(self):
        param = self.t["Parameters"]["PrometheusCredentials"]
        self.assertEqual((param["Default"], param["NoEcho"]), ("", True))
        self.assertEqual(
            self.t["Conditions"]["HasPrometheusCredentials"],
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "PrometheusCredentials"}, ""]}]},
        )
        for f in common.FUNCTIONS:
            env = self.t["Resources"][common.logical(f) + "Function"]["Properties"]["Environment"]["Variables"]
            with self.subTest(function=f):
                if f == "health-check":
                    self.assertEqual(
                        env["CANARY_PROMETHEUS_CREDENTIALS"],
                        {"Fn::If": ["HasPrometheusCredentials", {"Ref": "PrometheusCredentials"}, {"Ref": "AWS::NoValue"}]},
                    )
                else:
                    self.assertNotIn("PrometheusCredentials", json.dumps(env))
        # referenced nowhere else (no output, no other resource)
        uses = [n for n, r in self.t["Resources"].items() if "PrometheusCredentials" in json.dumps(r)]
        self.assertEqual(uses, ["HealthCheckFunction"])
        self.assertNotIn("PrometheusCredentials", json.dumps(self.t.get("Outputs", {})))

    def test_every_parameter_is_in_exactly_one_console_group(self):
        groups = self.t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        listed = [p for g in groups for p in g["Parameters"]]
        self.assertEqual(sorted(listed), sorted(self.t["Parameters"]))
        self.assertEqual(len(listed), len(set(listed)))
        labels = self.t["Metadata"]["AWS::CloudFormation::Interface"].get("ParameterLabels", {})
        self.assertLessEqual(set(labels), set(self.t["Parameters"]))

    def test_each_function_writes_only_its_own_log_group(self):
        for f in common.FUNCTIONS:
            logs = [s for s in self.role_statements(f) if s.get("Sid") == "OwnLogGroup"]
            with self.subTest(function=f):
                self.assertEqual(len(logs), 1)
                self.assertEqual(logs[0]["Resource"], {"Fn::GetAtt": [common.logical(f) + "LogGroup", "Arn"]})
                fn = self.t["Resources"][common.logical(f) + "Function"]["Properties"]
                self.assertEqual(fn["LoggingConfig"]["LogGroup"], {"Ref": common.logical(f) + "LogGroup"})

    def test_only_render_template_and_rollback_may_describe_executions_and_only_of_this_state_machine(self):
        # render-template: is the lock's holder still running? rollback: the same, before
        # it recovers a service a stopped execution left behind.
        machine_name = self.t["Resources"]["StateMachine"]["Properties"]["StateMachineName"]
        self.assertEqual(machine_name, {"Fn::Sub": "${AWS::StackName}-canary-deployment"})
        for f in common.FUNCTIONS:
            sts = [s for s in self.role_statements(f) if any(a.startswith("states:") for a in common.as_list(s["Action"]))]
            with self.subTest(function=f):
                if f not in ("render-template", "rollback"):
                    self.assertEqual(sts, [])
                    continue
                self.assertEqual(len(sts), 1)
                self.assertEqual(sts[0]["Action"], "states:DescribeExecution")
                self.assertEqual(
                    sts[0]["Resource"],
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-canary-deployment:*"
                    },
                )

    def test_a_stopped_or_timed_out_execution_of_this_state_machine_reaches_the_rollback_function_only(self):
        rules = {n: r for n, r in self.t["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
        self.assertEqual(list(rules), ["ExecutionEndedRule"])
        rule = rules["ExecutionEndedRule"]["Properties"]
        self.assertEqual(rule["State"], "ENABLED")
        self.assertEqual(
            rule["EventPattern"],
            {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ["ABORTED", "TIMED_OUT"], "stateMachineArn": [{"Ref": "StateMachine"}]},
            },
        )
        self.assertEqual([t["Arn"] for t in rule["Targets"]], [{"Fn::GetAtt": ["RollbackFunction", "Arn"]}])
        # an event EventBridge cannot deliver is kept, not dropped
        self.assertEqual(
            rule["Targets"][0]["DeadLetterConfig"], {"Arn": {"Fn::GetAtt": ["RecoveryDeadLetterQueue", "Arn"]}}
        )
        permissions = [r["Properties"] for r in self.t["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
        self.assertEqual(
            permissions,
            [
                {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Fn::GetAtt": ["RollbackFunction", "Arn"]},
                    "Principal": "events.amazonaws.com",
                    "SourceAccount": {"Ref": "AWS::AccountId"},
                    "SourceArn": {"Fn::GetAtt": ["ExecutionEndedRule", "Arn"]},
                }
            ],
        )
        # A refused event (its execution's last task may still run) is delivered again by
        # Lambda's asynchronous retries (two, a minute, then two apart, outlasting the
        # 60 s stop grace); one still failing then goes to the dead-letter queue.
        configs = [r["Properties"] for r in self.t["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
        self.assertEqual(
            configs,
            [
                {
                    "FunctionName": {"Fn::GetAtt": ["RollbackFunction", "Arn"]},
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 2,
                    "MaximumEventAgeInSeconds": 3600,
                    "DestinationConfig": {
                        "OnFailure": {"Destination": {"Fn::GetAtt": ["RecoveryDeadLetterQueue", "Arn"]}}
                    },
                }
            ],
        )

    def test_only_the_rule_and_the_rollback_function_may_send_to_the_recovery_dead_letter_queue(self):
        queue = {"Fn::GetAtt": ["RecoveryDeadLetterQueue", "Arn"]}
        for f in common.FUNCTIONS:
            sends = [s for s in self.role_statements(f) if "sqs:SendMessage" in common.as_list(s["Action"])]
            with self.subTest(function=f):
                if f == "rollback":
                    self.assertEqual([(s["Action"], s["Resource"]) for s in sends], [("sqs:SendMessage", queue)])
                else:
                    self.assertEqual(sends, [])
        (st,) = self.t["Resources"]["RecoveryDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual(
            (st["Principal"], st["Action"], st["Resource"], st["Condition"]),
            (
                {"Service": "events.amazonaws.com"},
                "sqs:SendMessage",
                queue,
                {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ExecutionEndedRule", "Arn"]}}},
            ),
        )
        self.assertTrue(self.t["Resources"]["RecoveryDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"])

    # ------------------------------------------------------------------ private clusters
    def test_the_functions_join_the_vpc_only_when_subnets_are_given(self):
        for name in ("SubnetIds", "SecurityGroupIds"):
            param = self.t["Parameters"][name]
            self.assertEqual((param["Type"], param["Default"]), ("CommaDelimitedList", ""))
        self.assertEqual(
            self.t["Conditions"]["InVpc"],
            {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SubnetIds"}]}, ""]}]},
        )
        for f in common.FUNCTIONS:
            props = self.t["Resources"][common.logical(f) + "Function"]["Properties"]
            with self.subTest(function=f):
                self.assertEqual(
                    props["VpcConfig"],
                    {
                        "Fn::If": [
                            "InVpc",
                            {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}},
                            {"Ref": "AWS::NoValue"},
                        ]
                    },
                )

    def test_subnet_and_security_group_items_are_ids_or_the_empty_default(self):
        for name, good, bad in (
            ("SubnetIds", ["", "subnet-0a1b2c3d", "subnet-0123456789abcdef0"], ["subnet-", "sg-0a1b2c3d", "subnet-XYZ12345", "*"]),
            ("SecurityGroupIds", ["", "sg-0a1b2c3d", "sg-0123456789abcdef0"], ["sg-", "subnet-0a1b2c3d", " sg-0a1b2c3d"]),
        ):
            pattern = re.compile(self.t["Parameters"][name]["AllowedPattern"])
            for item in good:
                with self.subTest(parameter=name, item=item):
                    self.assertRegex(item, pattern)
            for item in bad:
                with self.subTest(parameter=name, item=item):
                    self.assertNotRegex(item, pattern)

    def test_subnets_and_security_groups_are_given_together_or_not_at_all(self):
        (assertion,) = self.t["Rules"]["VpcConfigIsComplete"]["Assertions"]
        none = {"Fn::EachMemberEquals": [{"Ref": "SubnetIds"}, ""]}
        no_sg = {"Fn::EachMemberEquals": [{"Ref": "SecurityGroupIds"}, ""]}
        self.assertEqual(
            assertion["Assert"],
            {"Fn::Or": [{"Fn::And": [none, no_sg]}, {"Fn::And": [{"Fn::Not": [none]}, {"Fn::Not": [no_sg]}]}]},
        )

    def test_network_interface_rights_exist_only_under_in_vpc_and_only_in_this_account_and_region(self):
        for f in common.FUNCTIONS:
            role = self.t["Resources"][common.logical(f) + "Role"]
            raw = [
                item
                for pol in common.flat(role["Properties"]["Policies"])
                for item in pol["PolicyDocument"]["Statement"]
            ]
            plain_ec2 = [s for s in raw if "Fn::If" not in s and any(a.startswith("ec2:") for a in common.as_list(s["Action"]))]
            guarded = [s["Fn::If"] for s in raw if "Fn::If" in s and s["Fn::If"][0] == "InVpc"]
            with self.subTest(function=f):
                self.assertEqual(plain_ec2, [], "ec2 rights outside the InVpc condition")
                self.assertEqual([g[2] for g in guarded], [{"Ref": "AWS::NoValue"}] * 2)
                describe, manage = (g[1] for g in guarded)
                self.assertEqual(
                    (describe["Action"], describe["Resource"]),
                    (["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], "*"),
                )
                self.assertEqual(
                    manage["Action"],
                    [
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                )
                for r in manage["Resource"]:
                    self.assertRegex(
                        r["Fn::Sub"],
                        r"^arn:\$\{AWS::Partition\}:ec2:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(network-interface|subnet|security-group)/\*$",
                    )
                # no managed policy with logs:* on "*" (AWSLambdaVPCAccessExecutionRole)
                self.assertNotIn("ManagedPolicyArns", role["Properties"])

    # ------------------------------------------------------------------ writes, from the source
    def test_a_function_may_write_state_objects_exactly_when_its_code_writes_them(self):
        """s3:PutObject only for a function whose crate calls something that writes the
        store: canary-store's writers, or canary_lambda's Task methods built on them
        (shift records the weight, keep_one_version/finish/remove_first_deployment end the
        record, recover takes over the lock). Adding such a call to a handler without the
        permission, or keeping the permission after the last call goes, fails here."""
        writers = re.compile(
            r"\.(begin|take_lock|take_lock_as|renew_lock|release_lock|break_lock|record_progress|finish_promoted|"
            r"finish_rolled_back|finish_recovered|finish|put_manifest|request_abort|clear_abort|adopt_stable|"
            r"shift|keep_one_version|remove_first_deployment)\(|canary_lambda::recover\b"
        )
        for f in common.FUNCTIONS:
            source = "\n".join(p.read_text() for p in sorted((common.ROOT / "crates" / f / "src").glob("*.rs")))
            calls = sorted(set(m.group(0) for m in writers.finditer(source)))
            actions = {a for s in self.role_statements(f) for a in common.as_list(s["Action"])}
            with self.subTest(function=f, calls=calls):
                self.assertEqual(
                    "s3:PutObject" in actions,
                    bool(calls),
                    f"{f}: its code calls {calls or 'no store writer'}; its role "
                    f"{'grants' if 's3:PutObject' in actions else 'lacks'} s3:PutObject",
                )

    def test_the_state_machine_may_invoke_exactly_the_six_functions(self):
        role = self.t["Resources"]["StateMachineRole"]["Properties"]
        invoke = [
            s
            for p in common.flat(role["Policies"])
            for s in common.statements(p["PolicyDocument"])
            if "lambda:InvokeFunction" in common.as_list(s["Action"])
        ]
        self.assertEqual(len(invoke), 1)
        self.assertEqual(invoke[0]["Action"], "lambda:InvokeFunction")
        expected = []
        for f in common.FUNCTIONS:
            name = common.logical(f) + "Function"
            expected += [{"Fn::GetAtt": [name, "Arn"]}, {"Fn::Sub": "${" + name + ".Arn}:*"}]
        self.assertEqual(invoke[0]["Resource"], expected)


    def test_each_function_notifies_on_the_bus_and_the_topic_only(self):
        """Every function sends the notification of its decisions (canary_lambda::notify,
        called by the handlers and by the Task methods they share: shift, finish, recover):
        events:PutEvents on the EventBusName bus only, and sns:Publish on this stack's topic
        only, and only when NotificationTopic creates one; the environment names both."""
        notifies = re.compile(r"\bnotify\(|\.(shift|finish)\(|canary_lambda::recover\b")
        bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}
        for f in common.FUNCTIONS:
            source = "\n".join(p.read_text() for p in sorted((common.ROOT / "crates" / f / "src").glob("*.rs")))
            statements = self.role_statements(f)
            put = [s for s in statements if "events:PutEvents" in common.as_list(s["Action"])]
            publish = [s for s in statements if "sns:Publish" in common.as_list(s["Action"])]
            with self.subTest(function=f):
                self.assertRegex(source, notifies, f"{f} sends no notification: drop its rights")
                self.assertEqual(len(put), 1)
                self.assertEqual((put[0]["Action"], put[0]["Resource"]), ("events:PutEvents", bus))
                chat = self.conditional_statement(f, "CreateNotificationTopic")
                self.assertIsNotNone(chat, f"{f}: sns:Publish is not under CreateNotificationTopic")
                self.assertEqual(publish, [chat])
                self.assertEqual((chat["Action"], chat["Resource"]), ("sns:Publish", {"Ref": "DecisionTopic"}))
                env = self.t["Resources"][common.logical(f) + "Function"]["Properties"]["Environment"]["Variables"]
                self.assertEqual(env["CANARY_EVENT_BUS"], {"Ref": "EventBusName"})
                self.assertEqual(
                    env["CANARY_TOPIC_ARN"],
                    {"Fn::If": ["CreateNotificationTopic", {"Ref": "DecisionTopic"}, {"Ref": "AWS::NoValue"}]},
                )
        # Nothing else in any template may put events or publish.
        for name, where, st in all_statements():
            actions = common.as_list(st.get("Action", []))
            if "events:PutEvents" in actions or "sns:Publish" in actions:
                with self.subTest(where=where):
                    self.assertEqual(name, "shared.yaml")
                    self.assertIn(where.split(".")[0], [common.logical(f) + "Role" for f in common.FUNCTIONS])

    def test_the_topic_and_its_e_mail_subscription_exist_only_when_asked_for(self):
        res = self.t["Resources"]
        topic = res["DecisionTopic"]
        self.assertEqual(topic["Condition"], "CreateNotificationTopic")
        self.assertEqual(topic["Properties"]["KmsMasterKeyId"], "alias/aws/sns")
        sub = res["NotificationEmailSubscription"]
        self.assertEqual(sub["Condition"], "HasNotificationEmail")
        self.assertEqual(sub["Properties"]["Protocol"], "email")
        self.assertEqual(self.t["Parameters"]["NotificationTopic"]["Default"], "none")
        pattern = re.compile(self.t["Parameters"]["NotificationEmail"]["AllowedPattern"])
        for good in ("", "team@example.com", "a.b+canary@sub.example.org"):
            with self.subTest(email=good):
                self.assertRegex(good, pattern)
        for bad in ("team", "team@example", "a b@example.com", "@example.com"):
            with self.subTest(email=bad):
                self.assertNotRegex(bad, pattern)


class ClusterAccess(unittest.TestCase):
    def test_access_entries_cover_exactly_the_kubernetes_facing_roles_with_no_access_policy(self):
        t = common.load(common.CFN_DIR / "cluster-access.yaml")
        shared = common.load(common.CFN_DIR / "shared.yaml")
        entries = {n: r["Properties"] for n, r in t["Resources"].items() if r["Type"] == "AWS::EKS::AccessEntry"}
        imported = set()
        for props in entries.values():
            self.assertNotIn("AccessPolicies", props)
            self.assertEqual(props["KubernetesGroups"], [{"Ref": "KubernetesGroup"}])
            self.assertEqual(props.get("Type", "STANDARD"), "STANDARD")
            sub = props["PrincipalArn"]["Fn::ImportValue"]["Fn::Sub"]
            imported.add(sub.replace("${SharedStackName}-", ""))
        self.assertEqual(imported, {common.logical(f) + "RoleArn" for f in common.KUBE_FACING})
        exports = {
            o["Export"]["Name"]["Fn::Sub"].replace("${AWS::StackName}-", "")
            for o in shared["Outputs"].values()
            if "Export" in o
        }
        self.assertLessEqual(imported, exports)
        self.assertNotIn("system:masters", json.dumps(t["Resources"]))

    def test_rbac_is_one_namespaced_role_bound_to_the_access_entries_group_without_wildcards(self):
        import yaml

        docs = list(yaml.safe_load_all((common.CFN_DIR / "k8s-rbac.yaml").read_text()))
        self.assertEqual([d["kind"] for d in docs], ["Role", "RoleBinding"])
        role, binding = docs
        for d in docs:
            self.assertEqual(d["metadata"]["namespace"], "${KUBERNETES_NAMESPACE}")
        self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]})
        self.assertEqual(binding["subjects"], [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "${KUBERNETES_GROUP}"}])
        default_group = common.load(common.CFN_DIR / "cluster-access.yaml")["Parameters"]["KubernetesGroup"]["Default"]
        self.assertEqual(default_group, "eks-canary-deployers")
        allowed_verbs = {"get", "list", "create", "patch", "update", "delete"}
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", rule[field])
            self.assertLessEqual(set(rule["verbs"]), allowed_verbs)
            if "update" in rule["verbs"]:
                # only route objects are replaced (optimistic concurrency on the weights)
                self.assertLessEqual(set(rule["resources"]), {"virtualrouters", "httproutes", "grpcroutes"})
            if rule["resources"] == ["pods"]:
                self.assertEqual(rule["verbs"], ["list"])
        for forbidden in ("secrets", "configmaps", "clusterroles", "escalate", "bind", "impersonate"):
            self.assertNotIn(forbidden, json.dumps(role["rules"]))

    def test_get_is_granted_exactly_on_what_canary_kube_reads_by_name(self):
        """`get` on the kinds crates/canary-kube reads by name (Cluster::get: a Deployment's
        readiness and existence, a Service's port, the route before a shift), and nowhere
        else: pods are only listed, virtual nodes and services only applied and deleted."""
        import yaml

        role = next(yaml.safe_load_all((common.CFN_DIR / "k8s-rbac.yaml").read_text()))
        with_get = sorted(r for rule in role["rules"] if "get" in rule["verbs"] for r in rule["resources"])
        self.assertEqual(
            with_get, ["deployments", "grpcroutes", "httproutes", "namespaces", "services", "virtualrouters"]
        )
        # the namespace itself, and only it: read once when an apply is refused, to tell a
        # missing namespace from another refusal (Cluster::ensure_namespace)
        (ns_rule,) = [rule for rule in role["rules"] if "namespaces" in rule["resources"]]
        self.assertEqual(ns_rule["resources"], ["namespaces"])
        self.assertEqual(ns_rule["verbs"], ["get"])
        self.assertEqual(ns_rule["resourceNames"], ["${KUBERNETES_NAMESPACE}"])
        # the reads by name in canary-kube, each of one of those kinds
        source = "\n".join(p.read_text() for p in sorted((common.ROOT / "crates" / "canary-kube" / "src").rglob("*.rs")))
        literal_gets = set(re.findall(r'\.get\(\s*"[^"]*",\s*"([A-Za-z]+)"', source))
        self.assertLessEqual(literal_gets, {"Deployment", "Service", "Namespace"}, literal_gets)
        self.assertIn("read_route", source)  # the route kinds: VirtualRouter, HTTPRoute, GRPCRoute
        everything = sorted(r for rule in role["rules"] for r in rule["resources"])
        self.assertEqual(
            sorted(set(everything) - set(with_get)), ["pods", "virtualnodes", "virtualservices"]
        )


if __name__ == "__main__":
    unittest.main()
