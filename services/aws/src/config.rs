//! SDK client construction with endpoint overrides, and DynamoDB's typed configuration
//! (`ROSTER_TABLE`, `HISTORY_TABLE`, `SCAN_SEGMENTS`, `DYNAMODB_ENDPOINT` /
//! `AWS_ENDPOINT_URL_DYNAMODB`), parsed from a lookup function so tests pass a map.
//!
//! With an endpoint override (DynamoDB Local) and no AWS region or credentials configured,
//! clients get a dummy region (`us-east-1`) and dummy static credentials: DynamoDB Local
//! accepts any signature, and the default chains would otherwise probe the instance
//! metadata service for seconds before failing.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_types::timeout::TimeoutConfig;
use switchboard_core::config::{http_url, optional, scan_segments, ConfigError};
use switchboard_core::publisher::{STORE_ATTEMPT_TIMEOUT, STORE_OPERATION_TIMEOUT};

use crate::dynamo::{DEFAULT_HISTORY_TABLE, DEFAULT_TABLE_NAME};

/// Region used when an endpoint override is set and no region is configured.
pub const LOCAL_REGION: &str = "us-east-1";

/// Variables that configure a region for the default chain.
const REGION_VARIABLES: &[&str] = &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"];
/// Variables that configure credentials for the default chain.
const CREDENTIAL_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Which dummy settings a client for a local endpoint needs: those that nothing else
/// configures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalDefaults {
    /// Use [`LOCAL_REGION`].
    pub region: bool,
    /// Use static dummy credentials.
    pub credentials: bool,
}

impl LocalDefaults {
    /// Nothing dummy: the AWS default chains decide.
    pub const NONE: LocalDefaults = LocalDefaults {
        region: false,
        credentials: false,
    };

    /// For a client pointed at a local endpoint: dummy region and credentials where the
    /// environment configures none.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let set = |names: &[&str]| {
            names
                .iter()
                .any(|n| lookup(n).is_some_and(|v| !v.trim().is_empty()))
        };
        Self {
            region: !set(REGION_VARIABLES),
            credentials: !set(CREDENTIAL_VARIABLES),
        }
    }
}

/// Loads the shared AWS configuration, with the dummy region/credentials `local` asks for.
///
/// With the `default-chain` feature (the default: `serve`, the CLI, the tests) the AWS
/// default chains decide (environment, profile, SSO, web identity, instance role...) and the
/// SDK's default HTTPS client connects. Without it (the Lambda functions,
/// services/lambdas/Cargo.toml) it is [`environment_sdk_config`]: what Lambda provides and
/// nothing else linked (infra/README.md "Cold starts").
pub async fn load_sdk_config(local: LocalDefaults) -> SdkConfig {
    #[cfg(feature = "default-chain")]
    return default_chain_sdk_config(local).await;
    #[cfg(not(feature = "default-chain"))]
    return environment_sdk_config(local, |name| std::env::var(name).ok());
}

/// The configuration a Lambda function gets: region from `AWS_REGION` (else
/// `AWS_DEFAULT_REGION`), credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` (how Lambda hands over the execution role's), read when a client
/// first signs; no profile file, SSO, STS, IMDS or ECS provider. HTTPS on rustls with
/// `ring`, the TLS stack the functions already link (JWKS, Web Push), not a second one.
/// `local`'s dummy region and credentials win as in [`load_sdk_config`].
pub fn environment_sdk_config(
    local: LocalDefaults,
    lookup: impl Fn(&str) -> Option<String>,
) -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

    let region = if local.region {
        Some(Region::new(LOCAL_REGION))
    } else {
        ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()))
            .map(Region::new)
    };
    let credentials = if local.credentials {
        SharedCredentialsProvider::new(local_credentials())
    } else {
        SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
    };
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .http_client(https)
        .service_config(EnvironmentServiceConfig)
        .build()
}

/// Per-service settings from the environment, as the default loader reads them:
/// `AWS_ENDPOINT_URL_SQS` (the service id upper-cased, spaces as `_`), else
/// `AWS_ENDPOINT_URL`.
#[derive(Debug)]
struct EnvironmentServiceConfig;

impl aws_types::service_config::LoadServiceConfig for EnvironmentServiceConfig {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        set(&format!("{}_{service}", key.env())).or_else(|| set(key.env()))
    }
}

fn local_credentials() -> Credentials {
    Credentials::new("local", "local", None, None, "switchboard-local")
}

#[cfg(feature = "default-chain")]
async fn default_chain_sdk_config(local: LocalDefaults) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if local.region {
        loader = loader.region(Region::new(LOCAL_REGION));
    }
    if local.credentials {
        loader = loader.credentials_provider(local_credentials());
    }
    loader.load().await
}

/// `sdk` with the timeouts the publisher's time budget counts on
/// ([`switchboard_core::publisher::DEADLINE_MARGIN`], docs/design.md: Fan-out at any size,
/// "Time budget"): each SQS or DynamoDB attempt at most [`STORE_ATTEMPT_TIMEOUT`], each
/// operation with the SDK's retries at most [`STORE_OPERATION_TIMEOUT`]. Without them a call
/// that hangs would hold an invocation past its deadline, and Lambda would return the whole
/// batch. For the clients of functions with a deadline; `serve` and the tests keep the SDK
/// defaults.
pub fn with_store_timeouts(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(STORE_ATTEMPT_TIMEOUT)
                .operation_timeout(STORE_OPERATION_TIMEOUT)
                .connect_timeout(STORE_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build()
}

/// An endpoint URL (of variable `name`): [`http_url`], without a trailing `/`.
pub fn validate_endpoint(name: &'static str, value: &str) -> Result<String, ConfigError> {
    http_url(name, value).map(|url| url.trim_end_matches('/').to_string())
}

/// The DynamoDB adapters' settings: the client's endpoint and the two tables
/// ([`crate::dynamo::DynamoStores`] builds everything from them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// `ROSTER_TABLE`, default `SocketRoster`.
    pub roster_table: String,
    /// `HISTORY_TABLE`, default `SocketHistory`: history and everything else that is not the
    /// roster (receipts, usage, the work log, devices, online state, leases).
    pub history_table: String,
    /// `SCAN_SEGMENTS`, default 4 (1..=1000).
    pub scan_segments: usize,
    /// `DYNAMODB_ENDPOINT`, else `AWS_ENDPOINT_URL_DYNAMODB`; `None`: AWS's endpoint.
    pub endpoint: Option<String>,
    /// Dummy region/credentials for a local endpoint (only with `endpoint`).
    pub local: LocalDefaults,
}

impl DynamoConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let roster_table = optional::<String>(&lookup, "ROSTER_TABLE")?
            .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_string());
        if !valid_table_name(&roster_table) {
            return Err(ConfigError::Invalid {
                name: "ROSTER_TABLE",
                value: roster_table,
                reason: "a DynamoDB table name is 3-255 characters of a-z, A-Z, 0-9, _ - .".into(),
            });
        }
        let history_table = optional::<String>(&lookup, "HISTORY_TABLE")?
            .unwrap_or_else(|| DEFAULT_HISTORY_TABLE.to_string());
        let scan_segments = scan_segments(&lookup)?;
        let endpoint = match optional::<String>(&lookup, "DYNAMODB_ENDPOINT")? {
            Some(v) => Some(validate_endpoint("DYNAMODB_ENDPOINT", &v)?),
            None => optional::<String>(&lookup, "AWS_ENDPOINT_URL_DYNAMODB")?
                .map(|v| validate_endpoint("AWS_ENDPOINT_URL_DYNAMODB", &v))
                .transpose()?,
        };
        let local = if endpoint.is_some() {
            LocalDefaults::from_lookup(&lookup)
        } else {
            LocalDefaults::NONE
        };
        Ok(Self {
            roster_table,
            history_table,
            scan_segments,
            endpoint,
            local,
        })
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A DynamoDB client for `config`: the shared AWS configuration, the endpoint override
/// when one is set.
pub async fn dynamodb_client(config: &DynamoConfig) -> aws_sdk_dynamodb::Client {
    let sdk = load_sdk_config(config.local).await;
    dynamodb_client_from(&sdk, config.endpoint.as_deref())
}

/// A DynamoDB client from an already loaded configuration, with an optional endpoint.
pub fn dynamodb_client_from(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn store_clients_get_the_budget_timeouts() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        let timeouts = with_store_timeouts(&sdk).timeout_config().cloned().unwrap();
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(STORE_ATTEMPT_TIMEOUT)
        );
        assert_eq!(timeouts.operation_timeout(), Some(STORE_OPERATION_TIMEOUT));
    }

    #[test]
    fn environment_config_takes_the_region_lambda_sets_and_a_client() {
        let sdk = environment_sdk_config(
            LocalDefaults::NONE,
            lookup(&[("AWS_DEFAULT_REGION", "eu-west-1")]),
        );
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert!(sdk.credentials_provider().is_some());
        assert!(
            sdk.http_client().is_some(),
            "rustls on ring, not the SDK's default"
        );
        let local = environment_sdk_config(
            LocalDefaults {
                region: true,
                credentials: true,
            },
            lookup(&[("AWS_REGION", "eu-west-1")]),
        );
        assert_eq!(local.region().map(|r| r.as_ref()), Some(LOCAL_REGION));
    }

    #[test]
    fn defaults_without_any_variable() {
        let config = DynamoConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config.roster_table, "SocketRoster");
        assert_eq!(config.history_table, "SocketHistory");
        assert_eq!(config.scan_segments, 4);
        assert_eq!(config.endpoint, None);
        assert_eq!(config.local, LocalDefaults::NONE);
    }

    #[test]
    fn local_endpoint_gets_dummy_region_and_credentials() {
        let config = DynamoConfig::from_lookup(lookup(&[
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000/"),
            ("ROSTER_TABLE", "Roster-test"),
            ("HISTORY_TABLE", "History-test"),
            ("SCAN_SEGMENTS", "8"),
        ]))
        .unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(config.roster_table, "Roster-test");
        assert_eq!(config.history_table, "History-test");
        assert_eq!(config.scan_segments, 8);
        assert_eq!(
            config.local,
            LocalDefaults {
                region: true,
                credentials: true
            }
        );
    }

    #[test]
    fn configured_credentials_are_kept_with_an_endpoint() {
        let config = DynamoConfig::from_lookup(lookup(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.example.test"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIA..."),
        ]))
        .unwrap();
        assert_eq!(
            config.endpoint.as_deref(),
            Some("https://dynamodb.example.test")
        );
        assert_eq!(config.local, LocalDefaults::NONE);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases = [
            ("DYNAMODB_ENDPOINT", "localhost:8000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "ftp://x"),
            ("SCAN_SEGMENTS", "0"),
            ("SCAN_SEGMENTS", "four"),
            ("ROSTER_TABLE", "a b"),
        ];
        for (name, value) in cases {
            let err = DynamoConfig::from_lookup(lookup(&[(name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }
}
