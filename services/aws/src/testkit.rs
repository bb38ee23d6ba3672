//! Test support for clients pointed at fake endpoints (tests and the `testkit` feature).

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_apigatewaymanagement::config::{Credentials, SharedCredentialsProvider};

/// An SDK configuration for tests: a fixed region (`eu-west-1`), static dummy credentials
/// (the fakes and DynamoDB Local check no signature) and, when given, the endpoint every
/// client built from it calls.
pub fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )));
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}
