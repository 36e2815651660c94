//! The render-template Lambda function: wiring only (services from the environment, JSON logs,
//! the runtime loop); the work is in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    canary_lambda::runtime::serve("render-template", |services, input| async move {
        render_template::handle(&services, input).await
    })
    .await
}
