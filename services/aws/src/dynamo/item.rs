//! The roster's item layout (docs/design.md: Roster): key encoding and decoding, and the mapping
//! between a [`ConnectionRecord`] and a DynamoDB item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_core::roster::{ConnectionRecord, RosterError};
use switchboard_model::{ConnectionId, TenantId, UserId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Partition key attribute of the table: `T#<tenant>`.
pub const PK: &str = "PK";
/// Sort key attribute of the table: `C#<connectionId>`.
pub const SK: &str = "SK";
/// Partition key of the `byUser` index: `T#<tenant>#U#<user>`.
pub const GSI1PK: &str = "GSI1PK";
/// Sort key of the `byUser` index: `C#<connectionId>`.
pub const GSI1SK: &str = "GSI1SK";
/// The global secondary index finding a user's connections within a tenant.
pub const BY_USER_INDEX: &str = "byUser";
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// Plain attributes of an item.
pub const CONNECTION_ID: &str = "connectionId";
pub const TENANT: &str = "tenant";
pub const USER: &str = "user";
pub const ROLES: &str = "roles";
pub const CONNECTED_AT: &str = "connectedAt";
/// The token's `exp` (epoch seconds); absent on items of older writers.
pub const TOKEN_EXPIRES_AT: &str = "tokenExpiresAt";

const TENANT_PREFIX: &str = "T#";
const CONNECTION_PREFIX: &str = "C#";
const USER_INFIX: &str = "#U#";

/// `T#<tenant>`: the table's partition key for a tenant.
pub fn tenant_key(tenant: &TenantId) -> String {
    format!("{TENANT_PREFIX}{tenant}")
}

/// `C#<connectionId>`: the table's (and the index's) sort key for a connection.
pub fn connection_key(connection: &ConnectionId) -> String {
    format!("{CONNECTION_PREFIX}{connection}")
}

/// `T#<tenant>#U#<user>`: the `byUser` partition key. Ids never contain `#`, so the
/// encoding is unambiguous.
pub fn user_key(tenant: &TenantId, user: &UserId) -> String {
    format!("{TENANT_PREFIX}{tenant}{USER_INFIX}{user}")
}

/// Decodes `T#<tenant>`.
pub fn parse_tenant_key(key: &str) -> Result<TenantId, RosterError> {
    let raw = key
        .strip_prefix(TENANT_PREFIX)
        .ok_or_else(|| corrupt(format!("{PK} {key:?} does not start with {TENANT_PREFIX}")))?;
    TenantId::parse(raw).map_err(|e| corrupt(format!("{PK} {key:?}: tenant {e}")))
}

/// Decodes `C#<connectionId>`.
pub fn parse_connection_key(key: &str) -> Result<ConnectionId, RosterError> {
    let raw = key.strip_prefix(CONNECTION_PREFIX).ok_or_else(|| {
        corrupt(format!(
            "{SK} {key:?} does not start with {CONNECTION_PREFIX}"
        ))
    })?;
    ConnectionId::parse(raw).map_err(|e| corrupt(format!("{SK} {key:?}: connectionId {e}")))
}

/// Decodes `T#<tenant>#U#<user>`.
pub fn parse_user_key(key: &str) -> Result<(TenantId, UserId), RosterError> {
    let rest = key.strip_prefix(TENANT_PREFIX).ok_or_else(|| {
        corrupt(format!(
            "{GSI1PK} {key:?} does not start with {TENANT_PREFIX}"
        ))
    })?;
    let (tenant, user) = rest
        .split_once(USER_INFIX)
        .ok_or_else(|| corrupt(format!("{GSI1PK} {key:?} has no {USER_INFIX}")))?;
    let tenant =
        TenantId::parse(tenant).map_err(|e| corrupt(format!("{GSI1PK} {key:?}: tenant {e}")))?;
    let user = UserId::parse(user).map_err(|e| corrupt(format!("{GSI1PK} {key:?}: user {e}")))?;
    Ok((tenant, user))
}

/// The primary key of one connection's item.
pub fn primary_key(
    tenant: &TenantId,
    connection: &ConnectionId,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(tenant_key(tenant))),
        (
            SK.to_string(),
            AttributeValue::S(connection_key(connection)),
        ),
    ])
}

/// The full item for a record: keys, index keys and attributes.
pub fn record_to_item(record: &ConnectionRecord) -> HashMap<String, AttributeValue> {
    let connected_at = record
        .connected_at
        .format(&Rfc3339)
        // Only years outside 0..=9999 fail to format; fall back to the epoch seconds,
        // which still parse as a number of seconds below.
        .unwrap_or_else(|_| record.connected_at.unix_timestamp().to_string());
    let roles = record
        .roles
        .iter()
        .map(|r| AttributeValue::S(r.clone()))
        .collect();
    let mut item = HashMap::from([
        (
            PK.to_string(),
            AttributeValue::S(tenant_key(&record.tenant)),
        ),
        (
            SK.to_string(),
            AttributeValue::S(connection_key(&record.connection_id)),
        ),
        (
            GSI1PK.to_string(),
            AttributeValue::S(user_key(&record.tenant, &record.user)),
        ),
        (
            GSI1SK.to_string(),
            AttributeValue::S(connection_key(&record.connection_id)),
        ),
        (
            CONNECTION_ID.to_string(),
            AttributeValue::S(record.connection_id.to_string()),
        ),
        (
            TENANT.to_string(),
            AttributeValue::S(record.tenant.to_string()),
        ),
        (USER.to_string(), AttributeValue::S(record.user.to_string())),
        (ROLES.to_string(), AttributeValue::L(roles)),
        (CONNECTED_AT.to_string(), AttributeValue::S(connected_at)),
        (
            TTL_ATTRIBUTE.to_string(),
            AttributeValue::N(record.expires_at.to_string()),
        ),
    ]);
    if let Some(token_expires_at) = record.token_expires_at {
        item.insert(
            TOKEN_EXPIRES_AT.to_string(),
            AttributeValue::N(token_expires_at.to_string()),
        );
    }
    item
}

/// Parses an item back into a record. Anything missing, mistyped, invalid, or keys that
/// disagree with the attributes (an item filed under another tenant) is `Corrupt`.
pub fn item_to_record(
    item: &HashMap<String, AttributeValue>,
) -> Result<ConnectionRecord, RosterError> {
    let connection_id = ConnectionId::parse(string(item, CONNECTION_ID)?)
        .map_err(|e| corrupt(format!("{CONNECTION_ID}: {e}")))?;
    let tenant =
        TenantId::parse(string(item, TENANT)?).map_err(|e| corrupt(format!("{TENANT}: {e}")))?;
    let user = UserId::parse(string(item, USER)?).map_err(|e| corrupt(format!("{USER}: {e}")))?;

    let key_tenant = parse_tenant_key(string(item, PK)?)?;
    let key_connection = parse_connection_key(string(item, SK)?)?;
    if key_tenant != tenant || key_connection != connection_id {
        return Err(corrupt(format!(
            "keys {PK}/{SK} name {key_tenant}/{key_connection} but the item holds {tenant}/{connection_id}"
        )));
    }
    if let Some(index_key) = item.get(GSI1PK) {
        let raw = index_key
            .as_s()
            .map_err(|_| corrupt(format!("{GSI1PK} is not a string")))?;
        let (index_tenant, index_user) = parse_user_key(raw)?;
        if index_tenant != tenant || index_user != user {
            return Err(corrupt(format!(
                "{GSI1PK} names {index_tenant}/{index_user} but the item holds {tenant}/{user}"
            )));
        }
    }

    let roles = match item.get(ROLES) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| corrupt(format!("{ROLES} holds a non-string value")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        // A string set is what some tools write for a list of strings; accept it.
        Some(AttributeValue::Ss(values)) => values.clone(),
        // Another writer may store the roles claim as it came: space-separated.
        Some(AttributeValue::S(text)) => switchboard_model::Claims::split_roles(text),
        Some(_) => return Err(corrupt(format!("{ROLES} is not a list or a string"))),
        None => return Err(corrupt(format!("{ROLES} is missing"))),
    };

    let connected_at_raw = string(item, CONNECTED_AT)?;
    let connected_at = OffsetDateTime::parse(connected_at_raw, &Rfc3339)
        .map_err(|e| corrupt(format!("{CONNECTED_AT} {connected_at_raw:?}: {e}")))?;

    let expires_at = match item.get(TTL_ATTRIBUTE) {
        Some(AttributeValue::N(n)) => n
            .parse::<i64>()
            .map_err(|e| corrupt(format!("{TTL_ATTRIBUTE} {n:?}: {e}")))?,
        Some(_) => return Err(corrupt(format!("{TTL_ATTRIBUTE} is not a number"))),
        None => return Err(corrupt(format!("{TTL_ATTRIBUTE} is missing"))),
    };
    // Optional: items written before tokens expired on live connections lack it.
    let token_expires_at = match item.get(TOKEN_EXPIRES_AT) {
        Some(AttributeValue::N(n)) => Some(
            n.parse::<i64>()
                .map_err(|e| corrupt(format!("{TOKEN_EXPIRES_AT} {n:?}: {e}")))?,
        ),
        Some(_) => return Err(corrupt(format!("{TOKEN_EXPIRES_AT} is not a number"))),
        None => None,
    };

    Ok(ConnectionRecord {
        connection_id,
        tenant,
        user,
        roles,
        connected_at,
        expires_at,
        token_expires_at,
    })
}

fn string<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
) -> Result<&'a str, RosterError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(corrupt(format!("{name} is not a string"))),
        None => Err(corrupt(format!("{name} is missing"))),
    }
}

fn corrupt(message: String) -> RosterError {
    RosterError::Corrupt(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConnectionRecord {
        ConnectionRecord::from_raw(
            "L0SM9cOFvHcCIhw=",
            "acme",
            "alice@example.com",
            vec!["reader".into(), "admin".into()],
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            7_500,
        )
        .unwrap()
    }

    fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
        item[name].as_s().unwrap().clone()
    }

    #[test]
    fn keys_follow_the_spec_layout() {
        let tenant = TenantId::parse("acme").unwrap();
        let user = UserId::parse("alice").unwrap();
        let connection = ConnectionId::parse("abc=").unwrap();
        assert_eq!(tenant_key(&tenant), "T#acme");
        assert_eq!(connection_key(&connection), "C#abc=");
        assert_eq!(user_key(&tenant, &user), "T#acme#U#alice");
    }

    #[test]
    fn keys_decode_back_to_ids() {
        assert_eq!(parse_tenant_key("T#acme").unwrap().as_str(), "acme");
        assert_eq!(parse_connection_key("C#abc=").unwrap().as_str(), "abc=");
        let (tenant, user) = parse_user_key("T#acme#U#alice").unwrap();
        assert_eq!((tenant.as_str(), user.as_str()), ("acme", "alice"));
    }

    #[test]
    fn malformed_keys_are_corrupt() {
        for bad in ["acme", "T#", "X#acme", "T#a#b"] {
            assert!(
                matches!(parse_tenant_key(bad), Err(RosterError::Corrupt(_))),
                "{bad}"
            );
        }
        for bad in ["abc", "C#", "C#a b", "C#a/b"] {
            assert!(
                matches!(parse_connection_key(bad), Err(RosterError::Corrupt(_))),
                "{bad}"
            );
        }
        for bad in [
            "T#acme",
            "T#acme#U#",
            "T##U#alice",
            "acme#U#alice",
            "T#a#U#b#U#c",
        ] {
            assert!(
                matches!(parse_user_key(bad), Err(RosterError::Corrupt(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn item_carries_every_spec_attribute() {
        let item = record_to_item(&sample());
        assert_eq!(s(&item, PK), "T#acme");
        assert_eq!(s(&item, SK), "C#L0SM9cOFvHcCIhw=");
        assert_eq!(s(&item, GSI1PK), "T#acme#U#alice@example.com");
        assert_eq!(s(&item, GSI1SK), "C#L0SM9cOFvHcCIhw=");
        assert_eq!(s(&item, "connectionId"), "L0SM9cOFvHcCIhw=");
        assert_eq!(s(&item, "tenant"), "acme");
        assert_eq!(s(&item, "user"), "alice@example.com");
        assert_eq!(s(&item, "connectedAt"), "2023-11-14T22:13:20Z");
        assert_eq!(item["expiresAt"].as_n().unwrap(), "1700007500");
        assert_eq!(
            item["roles"].as_l().unwrap(),
            &vec![
                AttributeValue::S("reader".into()),
                AttributeValue::S("admin".into())
            ]
        );
        assert_eq!(item.len(), 10);
    }

    #[test]
    fn item_round_trips_to_the_same_record() {
        let record = sample();
        assert_eq!(item_to_record(&record_to_item(&record)).unwrap(), record);
        let mut no_roles = sample();
        no_roles.roles.clear();
        let item = record_to_item(&no_roles);
        assert_eq!(item["roles"], AttributeValue::L(vec![]));
        assert_eq!(item_to_record(&item).unwrap(), no_roles);
    }

    #[test]
    fn token_expiry_is_written_only_when_known_and_read_back() {
        let record = sample().with_token_expiry(Some(1_700_000_900));
        let item = record_to_item(&record);
        assert_eq!(item["tokenExpiresAt"].as_n().unwrap(), "1700000900");
        assert_eq!(item.len(), 11);
        assert_eq!(item_to_record(&item).unwrap(), record);
        assert!(!record_to_item(&sample()).contains_key("tokenExpiresAt"));
        let mut bad = item.clone();
        bad.insert("tokenExpiresAt".into(), AttributeValue::S("soon".into()));
        assert!(matches!(item_to_record(&bad), Err(RosterError::Corrupt(_))));
    }

    #[test]
    fn roles_written_as_a_space_separated_string_are_read() {
        let mut item = record_to_item(&sample());
        item.insert("roles".into(), AttributeValue::S("admin  publisher".into()));
        assert_eq!(item_to_record(&item).unwrap().roles, ["admin", "publisher"]);
    }

    #[test]
    fn corrupt_items_are_refused() {
        let good = record_to_item(&sample());
        type Spoil = Box<dyn Fn(&mut HashMap<String, AttributeValue>)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "missing connectionId",
                Box::new(|i| {
                    i.remove("connectionId");
                }),
            ),
            (
                "numeric tenant",
                Box::new(|i| {
                    i.insert("tenant".into(), AttributeValue::N("1".into()));
                }),
            ),
            (
                "invalid user",
                Box::new(|i| {
                    i.insert("user".into(), AttributeValue::S("a#b".into()));
                }),
            ),
            (
                "roles a number",
                Box::new(|i| {
                    i.insert("roles".into(), AttributeValue::N("1".into()));
                }),
            ),
            (
                "roles with a number",
                Box::new(|i| {
                    i.insert(
                        "roles".into(),
                        AttributeValue::L(vec![AttributeValue::N("1".into())]),
                    );
                }),
            ),
            (
                "missing roles",
                Box::new(|i| {
                    i.remove("roles");
                }),
            ),
            (
                "bad connectedAt",
                Box::new(|i| {
                    i.insert("connectedAt".into(), AttributeValue::S("yesterday".into()));
                }),
            ),
            (
                "expiresAt not a number",
                Box::new(|i| {
                    i.insert("expiresAt".into(), AttributeValue::S("1700007500".into()));
                }),
            ),
            (
                "expiresAt unparsable",
                Box::new(|i| {
                    i.insert("expiresAt".into(), AttributeValue::N("1.5e3".into()));
                }),
            ),
            (
                "missing expiresAt",
                Box::new(|i| {
                    i.remove("expiresAt");
                }),
            ),
            (
                "PK of another tenant",
                Box::new(|i| {
                    i.insert("PK".into(), AttributeValue::S("T#globex".into()));
                }),
            ),
            (
                "SK of another connection",
                Box::new(|i| {
                    i.insert("SK".into(), AttributeValue::S("C#other".into()));
                }),
            ),
            (
                "GSI1PK of another user",
                Box::new(|i| {
                    i.insert("GSI1PK".into(), AttributeValue::S("T#acme#U#bob".into()));
                }),
            ),
            (
                "missing PK",
                Box::new(|i| {
                    i.remove("PK");
                }),
            ),
        ];
        for (name, spoil) in cases {
            let mut item = good.clone();
            spoil(&mut item);
            assert!(
                matches!(item_to_record(&item), Err(RosterError::Corrupt(_))),
                "{name} was accepted"
            );
        }
    }
}
