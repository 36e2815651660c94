//! `canary doctor`: why would my first deployment fail? Calls each AWS endpoint and
//! makes each request the functions make, from where it runs and as whoever runs it,
//! and prints one line per check: `ok`, or what is missing and how to fix it (the VPC
//! endpoint to add, the IAM action to grant, the resource to create). Exit 0 when every
//! check passes, 1 when one fails, 2 on bad arguments.
//!
//! The checks: STS GetCallerIdentity (who the checks run as), CloudFormation
//! DescribeStacks (with `--stack`: the shared stack's bucket, state machine and
//! clusters), S3 on the state prefix (list, put, get, then the probe object deleted),
//! Step Functions DescribeStateMachine, CloudWatch GetMetricData, and for each cluster
//! EKS DescribeCluster and its API server (`GET /version` with an EKS token, over TLS
//! with the cluster's CA), and the metrics source deploy.json names when it is
//! Prometheus or Amazon Managed Service for Prometheus (one instant query).
//!
//! Run it where the functions run (a host in their subnets, with their security group)
//! to test the network path; the permissions tested are the caller's, so run it with
//! the functions' role (or one as narrow) to test theirs. STS and CloudFormation are
//! called with hand-signed Query requests (SigV4, as `canary_kube::eks` presigns its
//! token), which keeps two SDK crates out of the build.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use canary_core::spec::SourceSpec;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::deploy_json::{self, Inputs};
use crate::error::CliError;

mod checks;

/// `canary doctor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The shared stack: its BucketName and StateMachineArn outputs and its ClusterArns
    /// parameter name what to check (explicit flags win).
    #[arg(long)]
    pub stack: Option<String>,
    /// The state bucket.
    #[arg(long)]
    pub bucket: Option<String>,
    /// The functions' key prefix in the bucket (their CANARY_STATE_PREFIX).
    #[arg(long, default_value = "state/")]
    pub prefix: String,
    /// The state machine's ARN.
    #[arg(long)]
    pub state_machine: Option<String>,
    /// An EKS cluster the functions deploy to (repeatable).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// The region (default: the standard chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// A deploy.json: its cluster, and its metrics source when that is Prometheus or
    /// Amazon Managed Service for Prometheus.
    #[arg(long)]
    pub deploy_json: Option<PathBuf>,
    /// Seconds each check may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`s3 put`, `eks api <cluster>`...).
    pub what: String,
    /// What was found, or what is missing and how to fix it.
    pub outcome: Result<String, Problem>,
}

/// A failed check: what went wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub found: String,
    pub fix: String,
}

impl Check {
    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            outcome: Ok(detail.into()),
        }
    }

    fn fail(what: impl Into<String>, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            outcome: Err(Problem {
                found: found.into(),
                fix: fix.into(),
            }),
        }
    }

    /// The line printed for it.
    pub fn line(&self) -> String {
        match &self.outcome {
            Ok(detail) => format!("ok    {:<22} {detail}", self.what),
            Err(p) => format!("FAIL  {:<22} {}; fix: {}", self.what, p.found, p.fix),
        }
    }
}

/// `canary doctor`: runs the checks, prints a line each, exits 1 if one failed.
pub async fn doctor(args: &DoctorArgs) -> Result<ExitCode, CliError> {
    if !(0.1..=300.0).contains(&args.timeout) {
        return Err(CliError::Usage(format!(
            "invalid --timeout `{}`: must be between 0.1 and 300 seconds",
            args.timeout
        )));
    }
    if args.stack.is_none() && args.bucket.is_none() && args.state_machine.is_none() {
        return Err(CliError::Usage(
            "name the shared stack (--stack) or what to check (--bucket, --state-machine, --cluster)"
                .into(),
        ));
    }
    let spec = args
        .deploy_json
        .as_ref()
        .map(|p| deploy_json::load(p, &Inputs::default(), true))
        .transpose()?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let checks = run_checks(&sdk, args, spec.as_ref()).await;
    for check in &checks {
        println!("{}", check.line());
    }
    let failed = checks.iter().filter(|c| c.outcome.is_err()).count();
    if failed == 0 {
        println!("all {} checks passed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} checks failed", checks.len());
        Ok(ExitCode::from(1))
    }
}

/// Every check, in order; a check whose input is missing (no bucket known, say) is a
/// failed check naming the flag, not a skipped one.
pub async fn run_checks(
    sdk: &SdkConfig,
    args: &DoctorArgs,
    spec: Option<&canary_core::DeploySpec>,
) -> Vec<Check> {
    let limit = Duration::from_secs_f64(args.timeout);
    let region = sdk.region().map(ToString::to_string).unwrap_or_default();
    let mut checks = Vec::new();
    if region.is_empty() {
        checks.push(Check::fail(
            "region",
            "no region configured",
            "pass --region or set AWS_REGION",
        ));
        return checks;
    }
    let ctx = Ctx {
        sdk,
        region: &region,
        limit,
    };

    let caller = ctx.caller_identity().await;
    let principal = match &caller.outcome {
        Ok(arn) => arn.clone(),
        Err(_) => "the caller".to_owned(),
    };
    checks.push(caller);

    let mut bucket = args.bucket.clone();
    let mut state_machine = args.state_machine.clone();
    let mut clusters = args.clusters.clone();
    if let Some(stack) = &args.stack {
        match ctx.stack(stack).await {
            Ok(found) => {
                checks.push(Check::ok(
                    "cloudformation",
                    format!("stack {stack}: bucket, state machine and clusters read"),
                ));
                bucket = bucket.or(found.outputs.get("BucketName").cloned());
                state_machine = state_machine.or(found.outputs.get("StateMachineArn").cloned());
                if clusters.is_empty() {
                    clusters = found
                        .parameters
                        .get("ClusterArns")
                        .map(|arns| cluster_names(arns))
                        .unwrap_or_default();
                }
            }
            Err(problem) => checks.push(Check {
                what: "cloudformation".into(),
                outcome: Err(problem),
            }),
        }
    }
    if let Some(spec) = spec
        && !clusters.contains(&spec.cluster_name)
    {
        clusters.push(spec.cluster_name.clone());
    }

    match &bucket {
        Some(b) => checks.extend(ctx.s3(b, &args.prefix, &principal).await),
        None => checks.push(Check::fail(
            "s3",
            "no bucket to check",
            "pass --bucket, or --stack with a BucketName output",
        )),
    }
    match &state_machine {
        Some(arn) => checks.push(ctx.state_machine(arn, &principal).await),
        None => checks.push(Check::fail(
            "states",
            "no state machine to check",
            "pass --state-machine, or --stack with a StateMachineArn output",
        )),
    }
    checks.push(ctx.cloudwatch(&principal).await);
    for cluster in &clusters {
        checks.extend(ctx.cluster(cluster, &principal).await);
    }
    if let Some(spec) = spec
        && let SourceSpec::Prometheus(p) = &spec.metrics.source
    {
        checks.push(ctx.prometheus(p).await);
    }
    checks
}

/// What the checks share.
struct Ctx<'a> {
    sdk: &'a SdkConfig,
    region: &'a str,
    limit: Duration,
}

/// A shared stack's outputs and parameters.
#[derive(Debug, Default)]
struct Stack {
    outputs: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

/// How an AWS call failed.
enum Failure {
    /// The endpoint could not be reached (DNS, connect, TLS, timeout).
    Network(String),
    /// The caller may not (or its credentials are not valid).
    Denied(String),
    /// The resource does not exist.
    Missing(String),
    Other(String),
}

const DENIED: [&str; 8] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "SignatureDoesNotMatch",
    "AuthorizationError",
];

fn classify_code(code: &str, message: String) -> Failure {
    if DENIED.contains(&code) {
        Failure::Denied(message)
    } else if code.contains("NotFound")
        || code.starts_with("NoSuch")
        || code.ends_with("DoesNotExist")
        || code == "ValidationError" && message.contains("does not exist")
    {
        Failure::Missing(message)
    } else {
        Failure::Other(message)
    }
}

fn classify<E, R>(e: &SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Failure::Network(DisplayErrorContext(e).to_string())
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown").to_owned();
            let message = format!("{code}: {}", s.err().message().unwrap_or(""));
            classify_code(&code, message)
        }
        other => Failure::Other(DisplayErrorContext(other).to_string()),
    }
}

/// Cluster names from the shared stack's ClusterArns (`arn:...:cluster/<name>`,
/// comma-separated).
fn cluster_names(arns: &str) -> Vec<String> {
    arns.split(',')
        .filter_map(|a| a.trim().rsplit_once("cluster/").map(|(_, n)| n.to_owned()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// An AWS Query API call (STS, CloudFormation): a SigV4-signed form POST; the answer's
/// XML, or how it failed.
async fn query(
    sdk: &SdkConfig,
    region: &str,
    service: &str,
    params: &[(&str, &str)],
) -> Result<String, Failure> {
    let endpoint = service_endpoint(sdk, region, service);
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| Failure::Denied("no AWS credentials configured".into()))?
        .provide_credentials()
        .await
        .map_err(|e| Failure::Denied(format!("credentials: {e}")))?;
    let url = format!("{}/", endpoint.trim_end_matches('/'));
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Failure::Other(format!("endpoint `{url}`: {e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| Failure::Other(format!("endpoint `{url}` has no host")))?;
    let identity = credentials.into();
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Failure::Other(format!("signing: {e}")))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("host", host.as_str()), ("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| Failure::Other(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &signing)
        .map_err(|e| Failure::Other(format!("signing: {e}")))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Other(format!("request: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .map_err(|e| Failure::Other(format!("TLS setup: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = client
        .request(request)
        .await
        .map_err(|e| Failure::Network(format!("{url}: {e:?}")))?;
    let status = response.status();
    let text = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .map_err(|e| Failure::Network(format!("{url}: reading the answer: {e}")))?;
    if status.is_success() {
        return Ok(text);
    }
    let code = xml_values(&text, "Code")
        .into_iter()
        .next()
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = xml_values(&text, "Message")
        .into_iter()
        .next()
        .unwrap_or_default();
    Err(classify_code(&code, format!("{code}: {message}")))
}

/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` (as the SDKs read them), else
/// the service's regional endpoint.
fn service_endpoint(sdk: &SdkConfig, region: &str, service: &str) -> String {
    let specific = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    if let Ok(url) = std::env::var(&specific)
        && !url.is_empty()
    {
        return url;
    }
    if let Some(url) = sdk.endpoint_url() {
        return url.to_owned();
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every `<tag>value</tag>` in `xml`, in order, with the five XML entities decoded.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_are_read_in_order_and_unescaped() {
        let xml = "<r><member><OutputKey>BucketName</OutputKey><OutputValue>b&amp;c</OutputValue></member><member><OutputKey>StateMachineArn</OutputKey><OutputValue>arn:x</OutputValue></member></r>";
        assert_eq!(
            xml_values(xml, "OutputKey"),
            ["BucketName", "StateMachineArn"]
        );
        assert_eq!(xml_values(xml, "OutputValue"), ["b&c", "arn:x"]);
        assert!(xml_values(xml, "Nothing").is_empty());
    }

    /// A cluster whose API server does not answer (a private endpoint seen from outside
    /// its VPC): the line sends the reader to the functions' subnets.
    #[tokio::test]
    async fn an_unreachable_api_server_names_the_subnets_and_security_groups() {
        use aws_credential_types::Credentials;
        use aws_credential_types::provider::SharedCredentialsProvider;
        use base64::Engine as _;
        let sdk = SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )))
            .build();
        let ctx = Ctx {
            sdk: &sdk,
            region: "us-east-1",
            limit: Duration::from_secs(5),
        };
        let ca = include_str!("../../../canary-kube/tests/support/test-ca.pem");
        let endpoint = canary_kube::ClusterEndpoint {
            name: "private".into(),
            // a closed port: connection refused, as from outside the cluster's VPC
            endpoint: "https://127.0.0.1:9".into(),
            ca_data: base64::engine::general_purpose::STANDARD.encode(ca),
        };
        let check = ctx.api_server(&endpoint).await;
        assert_eq!(check.what, "eks api private");
        let line = check.line();
        assert!(line.starts_with("FAIL"), "{line}");
        assert!(
            line.contains("https://127.0.0.1:9 could not be reached"),
            "{line}"
        );
        assert!(line.contains("SubnetIds and SecurityGroupIds"), "{line}");
    }

    /// `--stack`: the shared stack's outputs and ClusterArns parameter (a stack in moto
    /// with the same outputs) name what is checked.
    #[tokio::test]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn the_stack_names_the_bucket_the_state_machine_and_the_clusters() {
        use canary_testkit::{MotoServer, unique_name};
        let moto = MotoServer::shared().unwrap();
        let sdk = moto.sdk_config().await;
        let bucket = unique_name("doctor-stack");
        aws_sdk_s3::Client::new(&sdk)
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let machine = aws_sdk_sfn::Client::new(&sdk)
            .create_state_machine()
            .name(unique_name("canary"))
            .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/canary-sfn")
            .send()
            .await
            .unwrap()
            .state_machine_arn()
            .to_owned();
        let stack = unique_name("eks-canary");
        let cluster = unique_name("absent");
        let template = serde_json::json!({
            "Parameters": {"ClusterArns": {"Type": "String"}},
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {
                "BucketName": {"Value": bucket},
                "StateMachineArn": {"Value": machine},
            },
        })
        .to_string();
        let arns = format!("arn:aws:eks:us-east-1:123456789012:cluster/{cluster}");
        let created = query(
            &sdk,
            "us-east-1",
            "cloudformation",
            &[
                ("Action", "CreateStack"),
                ("StackName", &stack),
                ("TemplateBody", &template),
                ("Parameters.member.1.ParameterKey", "ClusterArns"),
                ("Parameters.member.1.ParameterValue", &arns),
                ("Version", "2010-05-15"),
            ],
        )
        .await;
        assert!(created.is_ok(), "CreateStack failed");
        let args = DoctorArgs {
            stack: Some(stack.clone()),
            bucket: None,
            prefix: "state/".into(),
            state_machine: None,
            clusters: Vec::new(),
            region: None,
            deploy_json: None,
            timeout: 10.0,
        };
        let checks = run_checks(&sdk, &args, None).await;
        let lines: Vec<String> = checks.iter().map(Check::line).collect();
        let text = lines.join("\n");
        let find = |start: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(start))
                .cloned()
                .unwrap_or_else(|| format!("no line `{start}` in:\n{text}"))
        };
        let cfn = find("ok    cloudformation");
        assert!(cfn.starts_with("ok") && cfn.contains(&stack), "{text}");
        assert!(
            find(&format!("ok    s3 list {bucket}")).starts_with("ok"),
            "{text}"
        );
        assert!(find("ok    states").starts_with("ok"), "{text}");
        let eks = find(&format!("FAIL  eks {cluster}"));
        assert!(
            eks.starts_with("FAIL") && eks.contains("no cluster"),
            "{text}"
        );
    }

    #[test]
    fn cluster_names_come_from_the_stacks_arns() {
        assert_eq!(
            cluster_names(
                "arn:aws:eks:eu-west-1:1:cluster/blogpost, arn:aws:eks:eu-west-1:1:cluster/prod"
            ),
            ["blogpost", "prod"]
        );
        assert!(cluster_names("").is_empty());
    }

    #[test]
    fn errors_are_sorted_into_network_permission_and_missing() {
        assert!(matches!(
            classify_code("AccessDenied", String::new()),
            Failure::Denied(_)
        ));
        assert!(matches!(
            classify_code("NoSuchBucket", String::new()),
            Failure::Missing(_)
        ));
        assert!(matches!(
            classify_code("StateMachineDoesNotExist", String::new()),
            Failure::Missing(_)
        ));
        assert!(matches!(
            classify_code("ValidationError", "Stack with id x does not exist".into()),
            Failure::Missing(_)
        ));
        assert!(matches!(
            classify_code("Throttling", String::new()),
            Failure::Other(_)
        ));
    }

    #[test]
    fn a_failed_line_says_what_and_how_to_fix() {
        let c = Check::fail("s3 list b", "NoSuchBucket: gone", "create it");
        let line = c.line();
        assert!(line.starts_with("FAIL  s3 list b "), "{line}");
        assert!(
            line.ends_with(" NoSuchBucket: gone; fix: create it"),
            "{line}"
        );
        assert!(Check::ok("sts", "arn").line().starts_with("ok    sts"));
    }
}
