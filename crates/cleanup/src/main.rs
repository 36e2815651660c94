//! The cleanup Lambda function: wiring only (services from the environment, JSON logs,
//! the runtime loop); the work is in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_lambda::runtime::serve("cleanup", |services, input| async move {
        cleanup::handle(&services, input).await
    })
    .await
}
