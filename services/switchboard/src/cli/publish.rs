//! `switchboard publish`: sends an envelope to a publish API URL or an SQS queue URL.

use clap::Args;
use serde_json::{json, Value};
use switchboard_core::queue::MessageQueue;
use switchboard_model::{Envelope, MessageId};

use super::{CliError, Refusal};

const HELP: &str = "see switchboard publish --help";

#[derive(Args)]
pub struct PublishArgs {
    /// Publish API URL, e.g. http://127.0.0.1:8080/v1/messages.
    #[arg(
        long,
        conflicts_with = "queue_url",
        required_unless_present = "queue_url"
    )]
    url: Option<String>,
    /// SQS queue URL (AWS credentials from the usual chain).
    #[arg(long, env = "QUEUE_URL")]
    queue_url: Option<String>,
    /// Bearer token for the publish API.
    #[arg(long, env = "SWITCHBOARD_TOKEN")]
    token: Option<String>,
    /// A whole envelope as JSON (instead of the target flags below).
    #[arg(long, conflicts_with_all = ["tenant", "broadcast"])]
    envelope: Option<String>,
    /// Target tenant (with no --user/--connection: the whole tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Target user (repeat for several).
    #[arg(long = "user", requires = "tenant")]
    users: Vec<String>,
    /// Target connection id (repeat for several).
    #[arg(long = "connection", requires = "tenant", conflicts_with = "users")]
    connections: Vec<String>,
    /// Every connection of every tenant (admins only).
    #[arg(long, conflicts_with = "tenant")]
    broadcast: bool,
    /// The message data, as JSON.
    #[arg(long, default_value = "null")]
    data: String,
    /// Message id (generated when absent).
    #[arg(long)]
    id: Option<String>,
}

fn build_envelope(args: &PublishArgs) -> Result<Envelope, CliError> {
    let value: Value = if let Some(text) = &args.envelope {
        serde_json::from_str(text)
            .map_err(|e| Refusal::new("--envelope", format!("not JSON ({e})"), HELP))?
    } else {
        let data: Value = serde_json::from_str(&args.data)
            .map_err(|e| Refusal::new("--data", format!("not JSON ({e})"), HELP))?;
        let target = match (&args.tenant, args.broadcast) {
            (_, true) => json!({"type": "broadcast"}),
            (Some(tenant), false) if !args.users.is_empty() => {
                json!({"type": "users", "tenant": tenant, "users": args.users})
            }
            (Some(tenant), false) if !args.connections.is_empty() => {
                json!({"type": "connections", "tenant": tenant, "connectionIds": args.connections})
            }
            (Some(tenant), false) => json!({"type": "tenant", "tenant": tenant}),
            (None, false) => {
                return Err(Refusal::new(
                    "--tenant, --broadcast, --envelope",
                    "no target given",
                    "give --tenant [--user U | --connection C]..., --broadcast or --envelope",
                )
                .into())
            }
        };
        let mut envelope = json!({"target": target, "data": data});
        if let Some(id) = &args.id {
            envelope["id"] = json!(id);
        }
        envelope
    };
    let setting = match args.envelope {
        Some(_) => "--envelope",
        None => "--tenant, --user, --connection, --data, --id",
    };
    Envelope::from_value(value)
        .map_err(|e| Refusal::new(setting, format!("not a valid envelope: {e}"), HELP).into())
}

pub async fn publish_command(args: PublishArgs) -> Result<(), CliError> {
    let mut envelope = build_envelope(&args)?;
    if let Some(url) = &args.url {
        let token = args.token.as_deref().ok_or_else(|| {
            Refusal::new(
                "--token (SWITCHBOARD_TOKEN)",
                "is required with --url",
                "mint one: switchboard token --tenant <tenant> --user <user> --role publisher",
            )
        })?;
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&envelope)
            .send()
            .await
            .map_err(|e| CliError::Failed(format!("POST {url}: {e}")))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CliError::Failed(format!("POST {url}: {status}: {body}")));
        }
        println!("{body}");
        return Ok(());
    }
    let queue_url = args
        .queue_url
        .clone()
        .ok_or_else(|| Refusal::new("--url, --queue-url (QUEUE_URL)", "neither is given", HELP))?;
    let id = envelope
        .id
        .clone()
        .unwrap_or_else(|| MessageId::of_uuid(uuid::Uuid::new_v4().as_u128()));
    envelope.id = Some(id.clone());
    let id = String::from(id);
    let body = serde_json::to_string(&envelope).map_err(|e| CliError::Failed(e.to_string()))?;
    let sdk = switchboard_aws::load_sdk_config(switchboard_aws::LocalDefaults::NONE).await;
    let queue = switchboard_aws::SqsQueue::from_sdk_config(&sdk, queue_url);
    queue
        .enqueue(&id, &body)
        .await
        .map_err(|e| CliError::Failed(format!("SQS send: {e}")))?;
    println!("{}", json!({ "id": id }));
    Ok(())
}
