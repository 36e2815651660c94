//! [`ObjectStore`] on Amazon S3 (aws-sdk-s3): conditional puts with `If-None-Match: *`
//! and `If-Match: <etag>`, which S3 (and moto) enforce atomically per key.
//!
//! The client honours the SDK configuration (`AWS_ENDPOINT_URL`, `AWS_REGION`, the
//! credential chain, retry settings). With an endpoint override (moto, MinIO ...) it
//! uses path-style addressing; so does `CANARY_S3_FORCE_PATH_STYLE=true`.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use canary_core::errors::error_chain as chain;

use crate::StoreError;
use crate::objects::{Object, ObjectStore, PutCondition, PutResult};

/// Objects in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

/// How a failed S3 call is read.
enum Failure {
    /// 404: no such key.
    NotFound,
    /// 412 (or 409 `ConditionalRequestConflict`): a condition did not hold.
    Condition,
    /// Anything else.
    Error(StoreError),
}

impl S3Objects {
    /// A store for `bucket` with a client built from `sdk`.
    pub fn new(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        let path_style = sdk.endpoint_url().is_some()
            || std::env::var("AWS_ENDPOINT_URL_S3").is_ok_and(|v| !v.is_empty())
            || std::env::var("CANARY_S3_FORCE_PATH_STYLE")
                .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        Self::from_client(Client::from_conf(conf), bucket)
    }

    /// A store for `bucket` with a ready client.
    pub fn from_client(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the bucket (tests and local setups; the stack creates the real one).
    /// An existing bucket of ours is fine.
    pub async fn create_bucket(&self) -> Result<(), StoreError> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(e) => match classify("CreateBucket", &self.bucket, e) {
                Failure::Error(e) => Err(e),
                Failure::NotFound => Err(unexpected("CreateBucket", &self.bucket, "NotFound")),
                Failure::Condition => Err(unexpected(
                    "CreateBucket",
                    &self.bucket,
                    "PreconditionFailed",
                )),
            },
        }
    }
}

/// One table from S3 error codes and HTTP statuses to the store's errors; it is long
/// because it lists every case the store treats apart, in one place.
fn classify<E>(
    operation: &'static str,
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let key = key.to_owned();
    let (status, code, message) = match &err {
        SdkError::ServiceError(se) => (
            Some(se.raw().status().as_u16()),
            se.err().code().map(str::to_owned),
            se.err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| se.err().to_string()),
        ),
        SdkError::ResponseError(re) => (Some(re.raw().status().as_u16()), None, chain(&err)),
        SdkError::TimeoutError(_) => {
            return Failure::Error(StoreError::Transient {
                operation,
                key,
                code: "timeout".into(),
                message: chain(&err),
                source: Some(Box::new(err)),
            });
        }
        SdkError::DispatchFailure(_) => {
            return Failure::Error(StoreError::Transient {
                operation,
                key,
                code: "dispatch".into(),
                message: chain(&err),
                source: Some(Box::new(err)),
            });
        }
        _ => (None, None, chain(&err)),
    };
    let code_text = code
        .clone()
        .unwrap_or_else(|| status.map_or("unknown".into(), |s| format!("HTTP {s}")));
    match (status, code.as_deref()) {
        (_, Some("NoSuchBucket")) => Failure::Error(StoreError::Refused {
            operation,
            key,
            code: code_text,
            message,
            source: Some(Box::new(err)),
        }),
        (Some(404), _) | (_, Some("NoSuchKey")) => Failure::NotFound,
        (Some(412), _) | (_, Some("PreconditionFailed")) => Failure::Condition,
        (Some(409), Some("ConditionalRequestConflict")) => Failure::Condition,
        (Some(s), _) if s >= 500 || s == 429 => Failure::Error(StoreError::Transient {
            operation,
            key,
            code: code_text,
            message,
            source: Some(Box::new(err)),
        }),
        (
            _,
            Some(
                "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable",
            ),
        ) => Failure::Error(StoreError::Transient {
            operation,
            key,
            code: code_text,
            message,
            source: Some(Box::new(err)),
        }),
        _ => Failure::Error(StoreError::Refused {
            operation,
            key,
            code: code_text,
            message,
            source: Some(Box::new(err)),
        }),
    }
}

fn unexpected(operation: &'static str, key: &str, what: &str) -> StoreError {
    StoreError::Refused {
        operation,
        key: key.to_owned(),
        code: what.to_owned(),
        message: "unexpected answer".into(),
        source: None,
    }
}

/// The ETag of an answer: the lock token and every conditional write depend on it, so
/// an answer without one is an error, never an empty token.
fn etag(operation: &'static str, key: &str, etag: Option<&str>) -> Result<String, StoreError> {
    match etag {
        Some(e) if !e.is_empty() => Ok(e.to_owned()),
        _ => Err(StoreError::Refused {
            operation,
            key: key.to_owned(),
            code: "no ETag".into(),
            message: "the answer has no ETag, which conditional writes need".into(),
            source: None,
        }),
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match classify("GetObject", key, e) {
                    Failure::NotFound => Ok(None),
                    Failure::Condition => Err(unexpected("GetObject", key, "PreconditionFailed")),
                    Failure::Error(e) => Err(e),
                };
            }
        };
        let etag = etag("GetObject", key, out.e_tag())?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Transient {
                operation: "GetObject",
                key: key.to_owned(),
                code: "body".into(),
                message: chain(&e),
                source: Some(Box::new(e)),
            })?;
        Ok(Some(Object {
            body: body.into_bytes().to_vec(),
            etag,
        }))
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<PutResult, StoreError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        req = match condition {
            PutCondition::Always => req,
            PutCondition::IfAbsent => req.if_none_match("*"),
            PutCondition::IfMatch(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(out) => Ok(PutResult::Written(etag("PutObject", key, out.e_tag())?)),
            Err(e) => match classify("PutObject", key, e) {
                // If-Match on an absent key answers 404.
                Failure::Condition | Failure::NotFound => Ok(PutResult::ConditionFailed),
                Failure::Error(e) => Err(e),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("DeleteObject", key, e) {
                Failure::NotFound => Ok(()),
                Failure::Condition => Err(unexpected("DeleteObject", key, "PreconditionFailed")),
                Failure::Error(e) => Err(e),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| match classify("ListObjectsV2", prefix, e) {
                    Failure::Error(e) => e,
                    _ => unexpected("ListObjectsV2", prefix, "NotFound"),
                })?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}
