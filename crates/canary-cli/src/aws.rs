//! The AWS configuration the commands that call AWS share.

/// The AWS configuration from the standard chain (`AWS_REGION`, `AWS_ENDPOINT_URL`,
/// credentials, profiles).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
