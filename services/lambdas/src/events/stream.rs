//! The roster table's DynamoDB Streams records as Lambda hands them to the events function
//! (stream view `NEW_AND_OLD_IMAGES`): the Streams API's `Record`
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html>)
//! inside `{"Records": [...]}`, each with `eventSourceARN`, as in the Lambda developer
//! guide's example (<https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html>). Images
//! are in DynamoDB's JSON (`{"S": "…"}`, `{"N": "…"}`, `{"L": [...]}`, …), turned here into
//! the SDK's [`AttributeValue`]s so the roster's own item mapping
//! ([`switchboard_aws::dynamo::item_to_record`]) reads them: a record is a connection
//! exactly when the roster would read it as one.
//!
//! Serde over the documented shape rather than `aws_lambda_events`' `dynamodb` feature: that
//! one brings `serde_dynamo` (and `chrono`) and its own attribute type, which would still
//! need converting to the SDK's.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_aws::dynamo::item_to_record;
use switchboard_core::roster::ConnectionRecord;
use time::OffsetDateTime;

/// `userIdentity` of a record: set on items the Time to Live process deleted (`type`
/// `Service`, `principalId` `dynamodb.amazonaws.com`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct UserIdentity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(rename = "principalId", default)]
    pub principal_id: String,
}

impl UserIdentity {
    /// A removal by the Time to Live process.
    pub fn is_ttl(&self) -> bool {
        self.kind == "Service" && self.principal_id == "dynamodb.amazonaws.com"
    }
}

/// The `dynamodb` member of a record.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamChange {
    pub sequence_number: String,
    /// Epoch seconds (Lambda sends a number, possibly with a fraction).
    #[serde(default)]
    pub approximate_creation_date_time: Option<f64>,
    #[serde(default)]
    pub new_image: Option<Map<String, Value>>,
    #[serde(default)]
    pub old_image: Option<Map<String, Value>>,
}

/// One stream record.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    #[serde(default)]
    pub user_identity: Option<UserIdentity>,
    pub dynamodb: StreamChange,
}

impl StreamRecord {
    /// When the change happened, if the record says.
    pub fn changed_at(&self) -> Option<OffsetDateTime> {
        let seconds = self.dynamodb.approximate_creation_date_time?;
        if !seconds.is_finite() {
            return None;
        }
        // Whole milliseconds: the timestamp of the event, stable across redeliveries.
        let millis = (seconds * 1_000.0).round() as i128;
        OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).ok()
    }

    /// Whether the Time to Live process removed the item.
    pub fn by_ttl(&self) -> bool {
        self.user_identity
            .as_ref()
            .is_some_and(UserIdentity::is_ttl)
    }
}

/// The sequence number of a raw record, when it has one (the identifier a failed record
/// is reported by).
pub fn sequence_number(record: &Value) -> Option<&str> {
    record.get("dynamodb")?.get("SequenceNumber")?.as_str()
}

/// The connection an image holds, or why it holds none (an item another writer put in
/// the table, or an image the stream does not carry).
pub fn connection(image: Option<&Map<String, Value>>) -> Result<ConnectionRecord, String> {
    let image = image.ok_or("the record carries no image (is the stream NEW_AND_OLD_IMAGES?)")?;
    let item = item(image)?;
    item_to_record(&item).map_err(|e| e.to_string())
}

/// An image in DynamoDB's JSON as an SDK item.
pub fn item(image: &Map<String, Value>) -> Result<HashMap<String, AttributeValue>, String> {
    image
        .iter()
        .map(|(name, value)| {
            Ok((
                name.clone(),
                attribute(value).map_err(|e| format!("{name}: {e}"))?,
            ))
        })
        .collect()
}

/// One attribute value in DynamoDB's JSON: an object with exactly one member named by its
/// type (`S`, `N`, `B`, `BOOL`, `NULL`, `SS`, `NS`, `BS`, `L`, `M`); binary values are
/// base64.
pub fn attribute(value: &Value) -> Result<AttributeValue, String> {
    let object = value.as_object().ok_or("not an attribute value object")?;
    let mut members = object.iter();
    let (Some((kind, inner)), None) = (members.next(), members.next()) else {
        return Err("an attribute value has exactly one member".into());
    };
    let text = |v: &Value| -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{kind} holds a non-string"))
    };
    let texts = |v: &Value| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or_else(|| format!("{kind} is not a list"))?
            .iter()
            .map(text)
            .collect()
    };
    let blob = |v: &Value| -> Result<Blob, String> {
        aws_smithy_types::base64::decode(text(v)?)
            .map(Blob::new)
            .map_err(|e| format!("{kind}: {e}"))
    };
    let boolean = |v: &Value| {
        v.as_bool()
            .ok_or_else(|| format!("{kind} is not a boolean"))
    };
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(boolean(inner)?),
        "NULL" => AttributeValue::Null(boolean(inner)?),
        "SS" => AttributeValue::Ss(texts(inner)?),
        "NS" => AttributeValue::Ns(texts(inner)?),
        "BS" => AttributeValue::Bs(
            inner
                .as_array()
                .ok_or("BS is not a list")?
                .iter()
                .map(blob)
                .collect::<Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or("L is not a list")?
                .iter()
                .map(attribute)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item(inner.as_object().ok_or("M is not a map")?)?),
        other => return Err(format!("unknown attribute type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_attribute_type_converts() {
        let image = json!({
            "s": {"S": "x"}, "n": {"N": "1.5"}, "b": {"B": "aGk="}, "t": {"BOOL": true},
            "z": {"NULL": true}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1"]},
            "bs": {"BS": ["aGk="]}, "l": {"L": [{"S": "y"}, {"N": "2"}]},
            "m": {"M": {"k": {"S": "v"}}}
        });
        let item = item(image.as_object().unwrap()).unwrap();
        assert_eq!(item["s"], AttributeValue::S("x".into()));
        assert_eq!(item["n"], AttributeValue::N("1.5".into()));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(b"hi".to_vec())));
        assert_eq!(item["t"], AttributeValue::Bool(true));
        assert_eq!(item["z"], AttributeValue::Null(true));
        assert_eq!(item["ss"], AttributeValue::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(item["ns"], AttributeValue::Ns(vec!["1".into()]));
        assert_eq!(
            item["bs"],
            AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())])
        );
        assert_eq!(
            item["l"],
            AttributeValue::L(vec![
                AttributeValue::S("y".into()),
                AttributeValue::N("2".into())
            ])
        );
        assert_eq!(
            item["m"],
            AttributeValue::M(HashMap::from([("k".into(), AttributeValue::S("v".into()))]))
        );
    }

    #[test]
    fn malformed_values_are_refused_naming_the_attribute() {
        for bad in [
            json!({"a": "plain"}),
            json!({"a": {}}),
            json!({"a": {"S": "x", "N": "1"}}),
            json!({"a": {"S": 1}}),
            json!({"a": {"X": "1"}}),
            json!({"a": {"B": "not base64!"}}),
            json!({"a": {"L": [{"S": 1}]}}),
        ] {
            let error = item(bad.as_object().unwrap()).unwrap_err();
            assert!(error.starts_with("a: "), "{error}");
        }
    }

    #[test]
    fn ttl_removals_are_told_by_their_identity() {
        let record = |identity: Value| -> StreamRecord {
            serde_json::from_value(json!({
                "eventName": "REMOVE",
                "userIdentity": identity,
                "dynamodb": {"SequenceNumber": "1", "ApproximateCreationDateTime": 1.7e9}
            }))
            .unwrap()
        };
        assert!(
            record(json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})).by_ttl()
        );
        assert!(!record(json!({"type": "Service", "principalId": "other"})).by_ttl());
        assert!(!record(Value::Null).by_ttl());
        assert_eq!(
            record(Value::Null)
                .changed_at()
                .map(OffsetDateTime::unix_timestamp),
            Some(1_700_000_000)
        );
    }
}
