//! The shift-weights Lambda function: wiring only (services from the environment, JSON logs,
//! the runtime loop); the work is in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_lambda::runtime::serve("shift-weights", |services, input| async move {
        shift_weights::handle(&services, input).await
    })
    .await
}
