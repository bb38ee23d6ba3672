//! A table as the adapters hold it ([`Table`]: the client and the table's name, and
//! [`table_adapter!`], which declares an adapter on one), and creating (and deleting) the
//! tables exactly as `infra/` declares them: the roster table with `PK`/`SK`, the `byUser`
//! index on `GSI1PK`/`GSI1SK` projecting all attributes, on-demand billing, TTL on
//! `expiresAt`; and the history table (`PK`/`SK`, on-demand, TTL on `expiresAt`). Tables
//! are made for tests, the benchmarks and local runs on DynamoDB Local
//! ([`super::CreateTables`]).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::operation::BuildError;
use switchboard_core::roster::RosterError;

use super::{unavailable, BY_USER_INDEX, GSI1PK, GSI1SK, PK, SK, TTL_ATTRIBUTE};

/// One DynamoDB table and the client that reaches it: what every adapter on a table holds.
/// Cheap to clone (the SDK client is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn get_item(&self) -> GetItemFluentBuilder {
        self.client.get_item().table_name(&self.name)
    }

    pub fn put_item(&self) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.name)
    }

    pub fn update_item(&self) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.name)
    }

    pub fn delete_item(&self) -> DeleteItemFluentBuilder {
        self.client.delete_item().table_name(&self.name)
    }

    /// A `Query` of the partition `pk`: `#pk = :pk`, its name and value bound; a caller
    /// narrowing the sort key sets its own `KeyConditionExpression` on the same names.
    pub fn query(&self, pk: impl Into<String>) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
    }

    pub fn scan(&self) -> ScanFluentBuilder {
        self.client.scan().table_name(&self.name)
    }
}

/// Declares an adapter that holds one [`Table`] and nothing else: the struct (with the
/// given docs), `new(client, name)`, `on(table)` and `table_name()`.
macro_rules! table_adapter {
    ($(#[$doc:meta])* $adapter:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $adapter {
            table: $crate::dynamo::Table,
        }

        impl $adapter {
            /// The adapter on the table `name`, through `client`.
            pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
                Self::on($crate::dynamo::Table::new(client, name))
            }

            /// The adapter on `table`.
            pub fn on(table: $crate::dynamo::Table) -> Self {
                Self { table }
            }

            pub fn table_name(&self) -> &str {
                self.table.name()
            }
        }
    };
}
pub(crate) use table_adapter;

/// How long [`create_table`] waits for the table and its index to become `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

fn build_error(e: BuildError) -> RosterError {
    RosterError::Unavailable(format!("CreateTable request: {e}"))
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, RosterError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, RosterError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

/// Creates the roster table `name` (if it does not exist yet), waits until the table and
/// its `byUser` index are `ACTIVE`, and turns TTL on for `expiresAt`.
pub async fn create_table(client: &Client, name: &str) -> Result<(), RosterError> {
    create(client, name, true).await
}

/// Creates the history table `name` (if it does not exist yet): `PK`/`SK` strings, no
/// index, TTL on `expiresAt`.
pub async fn create_history_table(client: &Client, name: &str) -> Result<(), RosterError> {
    create(client, name, false).await
}

async fn create(client: &Client, name: &str, with_user_index: bool) -> Result<(), RosterError> {
    let by_user = GlobalSecondaryIndex::builder()
        .index_name(BY_USER_INDEX)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?);
    if with_user_index {
        request = request
            .attribute_definitions(string_attribute(GSI1PK)?)
            .attribute_definitions(string_attribute(GSI1SK)?)
            .global_secondary_indexes(by_user);
    }
    let created = request.send().await;
    match created {
        Ok(_) => {}
        // Already there (created earlier or concurrently): wait for it like a new one.
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(unavailable("CreateTable", e)),
    }
    wait_until_active(client, name).await?;
    enable_ttl(client, name).await
}

async fn wait_until_active(client: &Client, name: &str) -> Result<(), RosterError> {
    let started = Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTable", e))?;
        if let Some(table) = described.table() {
            let table_active = table.table_status() == Some(&TableStatus::Active);
            let indexes_active = table
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| s == &IndexStatus::Active));
            if table_active && indexes_active {
                return Ok(());
            }
        }
        if started.elapsed() > ACTIVE_TIMEOUT {
            return Err(RosterError::Unavailable(format!(
                "table {name} not ACTIVE after {ACTIVE_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), RosterError> {
    let current = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| unavailable("DescribeTimeToLive", e))?;
    let on = current.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL_ATTRIBUTE)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    });
    if on {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(build_error)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| unavailable("UpdateTimeToLive", e))?;
    Ok(())
}

/// Deletes the table `name`; a table that does not exist is not an error.
pub async fn delete_table(client: &Client, name: &str) -> Result<(), RosterError> {
    match client.delete_table().table_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(unavailable("DeleteTable", e)),
    }
}
