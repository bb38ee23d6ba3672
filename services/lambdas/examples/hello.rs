//! A hello-world Rust Lambda: the yardstick of the init benchmark (`init_bench`). The same
//! runtime (`lambda_runtime`, tokio) and build (`cargo lambda build --profile lambda-release`) as
//! the functions, and nothing else: it answers every event with the event itself.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) },
    ))
    .await
}
