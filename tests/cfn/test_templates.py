"""What the templates declare where moto cannot check it: bucket hardening, log
retention, the metric filters of DESIGN.md section 8, the pipeline's Deploy action and
buildspec, the ECR repository."""

import json
import sys
import unittest

sys.path.insert(0, __import__("os").path.dirname(__file__))
import common  # noqa: E402

SHARED = common.CFN_DIR / "shared.yaml"
BUCKET = common.CFN_DIR / "artifacts-bucket.yaml"
PIPELINE = common.CFN_DIR / "pipeline.yaml"


def of_type(template, kind):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


class Buckets(unittest.TestCase):
    def test_every_bucket_is_encrypted_private_versioned_expiring_and_tls_only(self):
        for path in (BUCKET, PIPELINE):
            t = common.load(path)
            policies = of_type(t, "AWS::S3::BucketPolicy")
            for name, res in of_type(t, "AWS::S3::Bucket").items():
                p = res["Properties"]
                with self.subTest(template=path.name, bucket=name):
                    sse = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                    self.assertIn(sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"], ("AES256", "aws:kms"))
                    self.assertEqual(
                        p["PublicAccessBlockConfiguration"],
                        {k: True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")},
                    )
                    self.assertEqual(p["VersioningConfiguration"], {"Status": "Enabled"})
                    rules = p["LifecycleConfiguration"]["Rules"]
                    self.assertTrue(any("NoncurrentVersionExpiration" in r for r in rules))
                    self.assertTrue(any("ExpirationInDays" in r for r in rules))
                    pol = [x for x in policies.values() if x["Properties"]["Bucket"] == {"Ref": name}]
                    self.assertEqual(len(pol), 1)
                    denies = [s for s in pol[0]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
                    self.assertEqual(len(denies), 1)
                    self.assertEqual(denies[0]["Condition"], {"Bool": {"aws:SecureTransport": "false"}})

    def test_the_state_bucket_logs_every_request_to_its_access_logs_bucket(self):
        res = common.load(BUCKET)["Resources"]
        self.assertEqual(
            res["Bucket"]["Properties"]["LoggingConfiguration"],
            {"DestinationBucketName": {"Ref": "AccessLogsBucket"}, "LogFilePrefix": "s3-access/"},
        )
        logs = res["AccessLogsBucket"]
        self.assertEqual(logs["DeletionPolicy"], "Retain")
        self.assertNotIn("LoggingConfiguration", logs["Properties"])
        allow = [
            s for s in res["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
        ]
        self.assertEqual(len(allow), 1)
        self.assertEqual(allow[0]["Principal"], {"Service": "logging.s3.amazonaws.com"})
        self.assertEqual(allow[0]["Action"], "s3:PutObject")
        self.assertEqual(allow[0]["Condition"]["ArnLike"], {"aws:SourceArn": {"Fn::GetAtt": ["Bucket", "Arn"]}})
        self.assertEqual(allow[0]["Condition"]["StringEquals"], {"aws:SourceAccount": {"Ref": "AWS::AccountId"}})

    def test_only_old_artifacts_expire_never_the_state_or_the_cli(self):
        rules = common.load(BUCKET)["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        expiring = [r for r in rules if "ExpirationInDays" in r]
        self.assertEqual([r["Prefix"] for r in expiring], ["artifacts/"])
        self.assertEqual(common.load(BUCKET)["Resources"]["Bucket"]["DeletionPolicy"], "Retain")


class Logs(unittest.TestCase):
    def test_every_log_group_has_a_retention(self):
        for path in common.cfn_templates():
            for name, res in of_type(common.load(path), "AWS::Logs::LogGroup").items():
                with self.subTest(template=path.name, group=name):
                    self.assertIn("RetentionInDays", res["Properties"])

    def test_the_state_machine_logs_to_its_own_group(self):
        t = common.load(SHARED)
        sm = of_type(t, "AWS::StepFunctions::StateMachine")["StateMachine"]["Properties"]
        dest = sm["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
        self.assertEqual(dest, {"Fn::GetAtt": ["StateMachineLogGroup", "Arn"]})
        self.assertEqual(sm["StateMachineType"], "STANDARD")
        self.assertEqual(t["Parameters"]["LogRetentionDays"]["Default"], 30)


class MetricFilters(unittest.TestCase):
    """DESIGN.md section 8: the original's filters, kept exactly, plus per-version ones."""

    @classmethod
    def setUpClass(cls):
        cls.filters = {n: r["Properties"] for n, r in of_type(common.load(PIPELINE), "AWS::Logs::MetricFilter").items()}

    def pattern(self, klass):
        return (
            '{$.envoy_response_code_class = "' + klass + '" && $.envoy_listener_http_downstream_rq_xx > 0'
            ' && $.pod_controller_name = "${ServiceName}*"}'
        )

    def test_the_service_wide_filters_are_the_originals(self):
        for name, klass in (("ServerErrorsFilter", "5"), ("SuccessesFilter", "2")):
            p = self.filters[name]
            with self.subTest(filter=name):
                self.assertEqual(p["LogGroupName"], {"Fn::Sub": "/aws/containerinsights/${ClusterName}/prometheus"})
                self.assertEqual(p["FilterPattern"], {"Fn::Sub": self.pattern(klass)})
                (mt,) = p["MetricTransformations"]
                self.assertEqual(
                    mt,
                    {
                        "MetricNamespace": "EnvoyPrometheus/ResponseCode",
                        "MetricName": {"Fn::Sub": klass + "xx-${ServiceName}"},
                        "MetricValue": "$.envoy_listener_http_downstream_rq_xx",
                        "DefaultValue": 0,
                    },
                )

    def test_the_per_version_filters_add_the_deployment_dimension_and_no_default(self):
        for name, klass in (("ServerErrorsByVersionFilter", "5"), ("SuccessesByVersionFilter", "2")):
            p = self.filters[name]
            with self.subTest(filter=name):
                self.assertEqual(p["FilterPattern"], {"Fn::Sub": self.pattern(klass)})
                (mt,) = p["MetricTransformations"]
                self.assertEqual(mt["MetricName"], {"Fn::Sub": klass + "xx-${ServiceName}"})
                self.assertEqual(mt["Dimensions"], [{"Key": "pod_controller_name", "Value": "$.pod_controller_name"}])
                # CloudWatch Logs refuses Dimensions together with DefaultValue
                self.assertNotIn("DefaultValue", mt)


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = common.load(PIPELINE)

    def test_the_deploy_stage_starts_the_shared_state_machine_with_deploy_json(self):
        stages = {s["Name"]: s for s in self.t["Resources"]["Pipeline"]["Properties"]["Stages"]}
        self.assertEqual(list(stages), ["Source", "Build", "Deploy", "Pin"])
        (action,) = stages["Deploy"]["Actions"]
        self.assertEqual(
            action["ActionTypeId"], {"Category": "Invoke", "Owner": "AWS", "Provider": "StepFunctions", "Version": "1"}
        )
        cfg = action["Configuration"]
        self.assertEqual(cfg["StateMachineArn"], {"Fn::ImportValue": {"Fn::Sub": "${SharedStackName}-StateMachineArn"}})
        self.assertEqual((cfg["InputType"], cfg["Input"]), ("FilePath", "deploy.json"))
        self.assertEqual(action["InputArtifacts"], [{"Name": "BuildOutput"}])

    def test_the_source_is_a_connection_or_codecommit_by_condition(self):
        stages = {s["Name"]: s for s in self.t["Resources"]["Pipeline"]["Properties"]["Stages"]}
        (source,) = stages["Source"]["Actions"]
        cond, codecommit, connection = source["Fn::If"]
        self.assertEqual(cond, "UseCodeCommit")
        self.assertEqual(codecommit["ActionTypeId"]["Provider"], "CodeCommit")
        self.assertEqual(connection["ActionTypeId"]["Provider"], "CodeStarSourceConnection")

    def test_the_build_pushes_the_image_and_runs_canary_prepare(self):
        spec = self.t["Resources"]["BuildProject"]["Properties"]["Source"]["BuildSpec"]
        self.assertIn('canary prepare --spec-dir "$SPEC_DIR" --image "$REPOSITORY_URI:$TAG" -o deploy.json', spec)
        self.assertIn('docker push "$REPOSITORY_URI:$TAG"', spec)
        # the CLI is checked against the pin in this stack, not against a file beside it
        self.assertIn('echo "${CANARY_CLI_SHA256}  /usr/local/bin/canary" | sha256sum -c -', spec)
        self.assertNotIn(".sha256", spec)
        env = {v["Name"]: v["Value"] for v in self.t["Resources"]["BuildProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
        self.assertEqual(env["CANARY_CLI_SHA256"], {"Ref": "CanaryCliSha256"})
        self.assertEqual(self.t["Parameters"]["CanaryCliSha256"]["AllowedPattern"], "^[0-9a-f]{64}$")
        self.assertNotIn("Default", self.t["Parameters"]["CanaryCliSha256"])
        self.assertIn("- deploy.json", spec)
        import yaml

        self.assertEqual(yaml.safe_load(spec)["version"], 0.2)

    def test_the_repository_scans_on_push_keeps_tags_immutable_and_expires_old_images(self):
        p = self.t["Resources"]["Repository"]["Properties"]
        self.assertEqual(p["ImageTagMutability"], "IMMUTABLE")
        self.assertEqual(p["ImageScanningConfiguration"], {"ScanOnPush": True})
        text = p["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
        rules = json.loads(text.replace("${ImageRetentionCount}", "100"))["rules"]
        self.assertEqual([r["rulePriority"] for r in rules], [1, 2, 3])
        untagged, keep, rest = rules
        self.assertEqual(untagged["selection"]["tagStatus"], "untagged")
        # images tagged keep-* are matched by rule 2 first, so rule 3's count never
        # reaches them (ECR: an image matched by a rule is out of lower rules' reach)
        self.assertEqual(keep["selection"]["tagStatus"], "tagged")
        self.assertEqual(keep["selection"]["tagPatternList"], ["keep-*"])
        self.assertEqual(rest["selection"], {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100})
        self.assertGreaterEqual(self.t["Parameters"]["ImageRetentionCount"]["Default"], 100)


if __name__ == "__main__":
    unittest.main()
