//! The EKS token is byte-compatible with botocore's (what `aws eks get-token` prints):
//! for the same credentials, region, cluster and time, the presigned URLs carry the
//! same query parameters, signature included.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use canary_kube::eks;
use canary_testkit::python_without_aws_env as python;

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len() + 1
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(scheme://host/path, decoded query parameters)`.
fn parse(url: &str) -> (String, BTreeMap<String, String>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (base.to_owned(), params)
}

struct Case {
    region: &'static str,
    cluster: &'static str,
    session_token: Option<&'static str>,
    time: &'static str,
    unix: u64,
}

#[test]
fn the_presigned_url_matches_botocore_parameter_for_parameter() {
    let found = canary_testkit::require_peer(
        "botocore",
        canary_testkit::python_module_available("botocore"),
        canary_testkit::install::BOTOCORE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !found {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/botocore_presign.py");
    let cases = [
        Case {
            region: "eu-west-1",
            cluster: "demo",
            session_token: None,
            time: "2024-05-06T07:08:09",
            unix: 1_714_979_289,
        },
        Case {
            region: "us-east-1",
            cluster: "yelb-prod",
            session_token: Some("FwoGZXIvYXdzEBYaDH/+session=token"),
            time: "2026-01-31T23:59:59",
            unix: 1_769_903_999,
        },
        Case {
            region: "ap-southeast-2",
            cluster: "a.b_c-d",
            session_token: Some("tok"),
            time: "2025-07-01T00:00:00",
            unix: 1_751_328_000,
        },
    ];
    for c in cases {
        let args = serde_json::json!({
            "region": c.region, "cluster": c.cluster, "access_key": "AKIDEXAMPLE",
            "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session_token": c.session_token, "time": c.time,
        });
        let out = python().arg(&script).arg(args.to_string()).output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!("botocore failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("cannot run python3: {e}"),
        };
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();

        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            c.session_token.map(str::to_owned),
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(c.unix);
        let ours =
            eks::presigned_url(&creds, c.region, c.cluster, at).unwrap_or_else(|e| panic!("{e}"));

        let (their_base, their_params) = parse(&theirs);
        let (our_base, our_params) = parse(&ours);
        assert_eq!(our_base, their_base, "{}", c.region);
        assert_eq!(
            our_params, their_params,
            "\nours:   {ours}\ntheirs: {theirs}"
        );
        assert!(their_params.contains_key("X-Amz-Signature"));
        assert_eq!(
            their_params.get("X-Amz-Expires").map(String::as_str),
            Some("60")
        );
        assert_eq!(
            their_params.get("X-Amz-SignedHeaders").map(String::as_str),
            Some("host;x-k8s-aws-id")
        );
        assert_eq!(
            their_params.contains_key("X-Amz-Security-Token"),
            c.session_token.is_some()
        );

        // The token is the prefixed, unpadded base64url of exactly that URL.
        let token = eks::token(&creds, c.region, c.cluster, at).unwrap_or_else(|e| panic!("{e}"));
        let body = token.strip_prefix("k8s-aws-v1.").unwrap_or_default();
        let decoded = URL_SAFE_NO_PAD.decode(body).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&decoded), ours);
        println!(
            "{}: {} parameters identical to botocore's",
            c.region,
            our_params.len()
        );
    }
}
