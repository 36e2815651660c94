//! The deploy-canary Lambda function: wiring only (services from the environment, JSON logs,
//! the runtime loop); the work is in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_lambda::runtime::serve("deploy-canary", |services, input| async move {
        deploy_canary::handle(&services, input).await
    })
    .await
}
