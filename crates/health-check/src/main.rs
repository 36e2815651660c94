//! The health-check Lambda function: wiring only (services from the environment, JSON logs,
//! the runtime loop); the work is in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_lambda::runtime::serve("health-check", |services, input| async move {
        health_check::handle(&services, input).await
    })
    .await
}
