//! Each check `canary doctor` makes, one method of `Ctx` each: the call the functions
//! make, and on failure what is missing and how to fix it.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Ctx<'_> {
    /// The VPC endpoint that serves `service` (its name in
    /// `com.amazonaws.<region>.<service>`).
    pub(super) fn endpoint_fix(&self, service: &str, kind: &str) -> String {
        format!(
            "the endpoint cannot be reached from here: in a VPC without a NAT path, add the {kind} VPC endpoint com.amazonaws.{}.{service} (docs/deploying.md, private clusters); else check DNS, proxies and the security group's egress on 443",
            self.region
        )
    }

    pub(super) async fn timed<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.limit, f).await.ok()
    }

    pub(super) fn timeout_fix(&self, service: &str, kind: &str) -> Problem {
        Problem {
            found: format!("no answer within {} s", self.limit.as_secs_f64()),
            fix: self.endpoint_fix(service, kind),
        }
    }

    pub(super) fn problem(
        &self,
        failure: Failure,
        service: &str,
        kind: &str,
        grant: &str,
        missing: &str,
    ) -> Problem {
        match failure {
            Failure::Network(m) => Problem {
                found: m,
                fix: self.endpoint_fix(service, kind),
            },
            Failure::Denied(m) => Problem {
                found: m,
                fix: grant.to_owned(),
            },
            Failure::Missing(m) => Problem {
                found: m,
                fix: missing.to_owned(),
            },
            Failure::Other(m) => Problem {
                found: m,
                fix: format!("see the message; {grant}"),
            },
        }
    }

    pub(super) async fn caller_identity(&self) -> Check {
        let call = query(
            self.sdk,
            self.region,
            "sts",
            &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        );
        match self.timed(call).await {
            None => Check {
                what: "sts".into(),
                outcome: Err(self.timeout_fix("sts", "interface")),
            },
            Some(Ok(xml)) => match xml_values(&xml, "Arn").into_iter().next() {
                Some(arn) => Check::ok("sts", arn),
                None => Check::fail(
                    "sts",
                    "GetCallerIdentity answered without an Arn",
                    "check AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS",
                ),
            },
            Some(Err(f)) => Check {
                what: "sts".into(),
                outcome: Err(self.problem(
                    f,
                    "sts",
                    "interface",
                    "configure valid credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID..., or the instance's role)",
                    "",
                )),
            },
        }
    }

    pub(super) async fn stack(&self, name: &str) -> Result<Stack, Problem> {
        let params = [
            ("Action", "DescribeStacks"),
            ("StackName", name),
            ("Version", "2010-05-15"),
        ];
        let call = query(self.sdk, self.region, "cloudformation", &params);
        match self.timed(call).await {
            None => Err(self.timeout_fix("cloudformation", "interface")),
            Some(Ok(xml)) => {
                let pairs = |k: &str, v: &str| {
                    xml_values(&xml, k)
                        .into_iter()
                        .zip(xml_values(&xml, v))
                        .collect::<BTreeMap<_, _>>()
                };
                Ok(Stack {
                    outputs: pairs("OutputKey", "OutputValue"),
                    parameters: pairs("ParameterKey", "ParameterValue"),
                })
            }
            Some(Err(f)) => Err(self.problem(
                f,
                "cloudformation",
                "interface",
                &format!("grant cloudformation:DescribeStacks on stack {name} (or pass --bucket, --state-machine and --cluster instead of --stack)"),
                &format!("no stack {name} in {}: deploy it with scripts/deploy-shared, or pass --region", self.region),
            )),
        }
    }

    pub(super) async fn s3(&self, bucket: &str, prefix: &str, principal: &str) -> Vec<Check> {
        let s3 = aws_sdk_s3::Client::new(self.sdk);
        let bucket_arn = format!("arn:aws:s3:::{bucket}");
        let missing = format!(
            "bucket {bucket} does not exist in this account: check --bucket (the shared stack's ArtifactsBucketName), or create it with cloudformation/artifacts-bucket.yaml"
        );
        let mut checks = Vec::new();
        let list = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send();
        let listed = match self.timed(list).await {
            None => Err(self.timeout_fix("s3", "gateway")),
            Some(Ok(_)) => Ok(format!("s3://{bucket}/{prefix} listed")),
            Some(Err(e)) => Err(self.problem(
                classify(&e),
                "s3",
                "gateway",
                &format!("grant s3:ListBucket on {bucket_arn} (prefix {prefix}) to {principal}"),
                &missing,
            )),
        };
        let stop = listed.is_err();
        checks.push(Check {
            what: format!("s3 list {bucket}"),
            outcome: listed,
        });
        if stop {
            return checks;
        }
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let key = format!("{prefix}doctor/probe-{stamp}.txt");
        let object_arn = format!("{bucket_arn}/{prefix}*");
        let put = s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(Vec::from(&b"canary doctor"[..]).into())
            .send();
        let put = match self.timed(put).await {
            None => Err(self.timeout_fix("s3", "gateway")),
            Some(Ok(_)) => Ok(format!("wrote s3://{bucket}/{key}")),
            Some(Err(e)) => Err(self.problem(
                classify(&e),
                "s3",
                "gateway",
                &format!("grant s3:PutObject on {object_arn} to {principal}"),
                &missing,
            )),
        };
        let written = put.is_ok();
        checks.push(Check {
            what: "s3 put".into(),
            outcome: put,
        });
        if !written {
            return checks;
        }
        let get = async {
            let out = s3.get_object().bucket(bucket).key(&key).send().await?;
            Ok::<_, SdkError<_, _>>(out.content_length().unwrap_or(0))
        };
        checks.push(Check {
            what: "s3 get".into(),
            outcome: match self.timed(get).await {
                None => Err(self.timeout_fix("s3", "gateway")),
                Some(Ok(len)) => Ok(format!("read it back ({len} bytes)")),
                Some(Err(e)) => Err(self.problem(
                    classify(&e),
                    "s3",
                    "gateway",
                    &format!("grant s3:GetObject on {object_arn} to {principal}"),
                    &missing,
                )),
            },
        });
        // The probe is removed when the caller may; the functions' roles may not
        // always (a leftover probe under doctor/ is harmless: nothing reads it).
        if let Some(Err(e)) = self
            .timed(s3.delete_object().bucket(bucket).key(&key).send())
            .await
        {
            eprintln!(
                "note: s3://{bucket}/{key} was left behind: {}",
                DisplayErrorContext(&e)
            );
        }
        checks
    }

    pub(super) async fn state_machine(&self, arn: &str, principal: &str) -> Check {
        let sfn = aws_sdk_sfn::Client::new(self.sdk);
        let call = sfn.describe_state_machine().state_machine_arn(arn).send();
        Check {
            what: "states".into(),
            outcome: match self.timed(call).await {
                None => Err(self.timeout_fix("states", "interface")),
                Some(Ok(out)) => Ok(format!("state machine {} ({:?})", out.name(), out.status())),
                Some(Err(e)) => Err(self.problem(
                    classify(&e),
                    "states",
                    "interface",
                    &format!("grant states:DescribeStateMachine on {arn} to {principal}"),
                    &format!("no state machine {arn}: check --state-machine (the shared stack's StateMachineArn output)"),
                )),
            },
        }
    }

    pub(super) async fn cloudwatch(&self, principal: &str) -> Check {
        use aws_sdk_cloudwatch::types::{Metric, MetricDataQuery, MetricStat};
        let cw = aws_sdk_cloudwatch::Client::new(self.sdk);
        let now = SystemTime::now();
        let query = MetricDataQuery::builder()
            .id("doctor")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("EnvoyPrometheus/ResponseCode")
                            .metric_name("5xx-canary-doctor")
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .build();
        let call = cw
            .get_metric_data()
            .metric_data_queries(query)
            .start_time((now - Duration::from_secs(300)).into())
            .end_time(now.into())
            .send();
        Check {
            what: "cloudwatch".into(),
            outcome: match self.timed(call).await {
                None => Err(self.timeout_fix("monitoring", "interface")),
                Some(Ok(_)) => Ok("GetMetricData answered".into()),
                Some(Err(e)) => Err(self.problem(
                    classify(&e),
                    "monitoring",
                    "interface",
                    &format!(
                        "grant cloudwatch:GetMetricData (Resource \"*\": it has no resource-level permissions) to {principal}"
                    ),
                    "",
                )),
            },
        }
    }

    pub(super) async fn cluster(&self, name: &str, principal: &str) -> Vec<Check> {
        let eks = aws_sdk_eks::Client::new(self.sdk);
        let what = format!("eks {name}");
        let described = match self.timed(eks.describe_cluster().name(name).send()).await {
            None => Err(self.timeout_fix("eks", "interface")),
            Some(Err(e)) => Err(self.problem(
                classify(&e),
                "eks",
                "interface",
                &format!(
                    "grant eks:DescribeCluster on arn:aws:eks:{}:<account>:cluster/{name} to {principal} (the shared stack's ClusterArns)",
                    self.region
                ),
                &format!("no cluster {name} in {}: check cluster_name / --cluster / --region", self.region),
            )),
            Some(Ok(out)) => {
                let cluster = out.cluster();
                let endpoint = cluster.and_then(|c| c.endpoint()).unwrap_or("");
                let ca = cluster
                    .and_then(|c| c.certificate_authority())
                    .and_then(|c| c.data())
                    .unwrap_or("");
                if endpoint.is_empty() || ca.is_empty() {
                    Err(Problem {
                        found: "DescribeCluster gave no endpoint or CA (is it still being created?)".into(),
                        fix: "wait until the cluster is ACTIVE".into(),
                    })
                } else {
                    Ok(canary_kube::ClusterEndpoint {
                        name: name.to_owned(),
                        endpoint: endpoint.to_owned(),
                        ca_data: ca.to_owned(),
                    })
                }
            }
        };
        let endpoint = match described {
            Ok(e) => e,
            Err(p) => {
                return vec![Check {
                    what,
                    outcome: Err(p),
                }];
            }
        };
        let mut checks = vec![Check::ok(what, format!("API server {}", endpoint.endpoint))];
        checks.push(self.api_server(&endpoint).await);
        checks
    }

    /// `GET /version` on the cluster's API server with an EKS token, trusting only the
    /// cluster's CA: the network path (a private endpoint is reachable only from the
    /// cluster's VPC) and the token.
    pub(super) async fn api_server(&self, endpoint: &canary_kube::ClusterEndpoint) -> Check {
        let what = format!("eks api {}", endpoint.name);
        let private_fix = format!(
            "the functions must run in the cluster's VPC (the shared stack's SubnetIds and SecurityGroupIds) and the cluster security group must allow 443 from SecurityGroupIds; check from a host there with `canary doctor --cluster {}`",
            endpoint.name
        );
        let token = match self.token(&endpoint.name).await {
            Ok(t) => t,
            Err(m) => return Check::fail(what, m, "configure valid credentials"),
        };
        let client = match canary_kube::client::client_for_endpoint(
            endpoint,
            &token,
            "default",
            &canary_kube::RequestPolicy::default(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                return Check::fail(
                    what,
                    format!("no client for {}: {e}", endpoint.endpoint),
                    "DescribeCluster's endpoint or certificateAuthority.data is not usable: check the cluster in the EKS console",
                );
            }
        };
        let call = async { client.apiserver_version().await.map_err(|e| format!("{e}")) };
        match self.timed(call).await {
            None => Check::fail(
                what,
                format!(
                    "{} did not answer within {} s",
                    endpoint.endpoint,
                    self.limit.as_secs_f64()
                ),
                private_fix,
            ),
            Some(Ok(v)) => Check::ok(what, format!("Kubernetes {}", v.git_version)),
            Some(Err(m)) if m.contains("401") || m.contains("Unauthorized") => Check::fail(
                what,
                format!("the API server refused the EKS token: {m}"),
                "the token is signed for the caller: check its credentials and clock",
            ),
            Some(Err(m)) => Check::fail(
                what,
                format!("{} could not be reached: {m}", endpoint.endpoint),
                private_fix,
            ),
        }
    }

    pub(super) async fn token(&self, cluster: &str) -> Result<String, String> {
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| "no AWS credentials configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("credentials: {e}"))?;
        canary_kube::eks::token(&credentials, self.region, cluster, SystemTime::now())
            .map_err(|e| e.to_string())
    }

    pub(super) async fn prometheus(&self, spec: &canary_core::spec::PrometheusSpec) -> Check {
        use canary_metrics::prometheus::{PrometheusMetrics, RetryPolicy};
        let what = "prometheus";
        let amp = canary_core::spec::aps_region(&spec.url).is_some();
        let fix = if amp {
            format!(
                "add the interface VPC endpoint com.amazonaws.{}.aps-workspaces and grant aps:QueryMetrics on the workspace (the shared stack's PrometheusWorkspaceArns)",
                self.region
            )
        } else {
            format!(
                "{} must be reachable from the functions' subnets (security groups, DNS) and accept metrics.auth's credentials",
                spec.url
            )
        };
        let source = match PrometheusMetrics::new(spec, Some(self.sdk)) {
            Ok(s) => s.with_retry(RetryPolicy {
                max_attempts: 1,
                initial_backoff: Duration::ZERO,
                max_backoff: Duration::ZERO,
                attempt_timeout: self.limit,
            }),
            Err(e) => return Check::fail(what, e.to_string(), fix),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match self.timed(source.instant("vector(1)", now)).await {
            None => Check::fail(
                what,
                format!(
                    "{} did not answer within {} s",
                    spec.url,
                    self.limit.as_secs_f64()
                ),
                fix,
            ),
            Some(Ok(_)) => Check::ok(what, format!("{} answered a query", spec.url)),
            Some(Err(e)) => Check::fail(what, e.to_string(), fix),
        }
    }
}
