//! Page continuations on a table keyed `PK`/`SK` (the roster table's tenant pages and scan
//! segments, the history table's device pages): a `LastEvaluatedKey` carried as JSON text
//! (`{"pk","sk"}`), so a work item can hold it and hand it back as the next
//! `ExclusiveStartKey`. Each adapter checks that a continuation is one of its own.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{PK, SK};

/// Where a DynamoDB page ends: the key (`PK`, `SK`) of the last item it evaluated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Continuation {
    pub(crate) pk: String,
    pub(crate) sk: String,
}

impl Continuation {
    /// The continuation of a `LastEvaluatedKey` (or of an item's key); `Err` names the
    /// missing part.
    pub(crate) fn from_key(key: &HashMap<String, AttributeValue>) -> Result<Self, String> {
        let part = |name: &str| {
            key.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| format!("LastEvaluatedKey without {name}"))
        };
        Ok(Self {
            pk: part(PK)?,
            sk: part(SK)?,
        })
    }

    /// The text a page hands out.
    pub(crate) fn encode(&self) -> String {
        // Two strings always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A continuation read back; `Err` says why the text is not one.
    pub(crate) fn decode(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The `ExclusiveStartKey` that resumes after it.
    pub(crate) fn start_key(self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_string(), AttributeValue::S(self.pk)),
            (SK.to_string(), AttributeValue::S(self.sk)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_its_text() {
        let key = HashMap::from([
            (PK.to_string(), AttributeValue::S("D#acme".into())),
            (SK.to_string(), AttributeValue::S("alice#abc".into())),
        ]);
        let text = Continuation::from_key(&key).unwrap().encode();
        assert_eq!(text, r#"{"pk":"D#acme","sk":"alice#abc"}"#);
        assert_eq!(Continuation::decode(&text).unwrap().start_key(), key);
    }

    #[test]
    fn refuses_keys_and_texts_that_are_not_continuations() {
        let half = HashMap::from([(PK.to_string(), AttributeValue::S("D#acme".into()))]);
        assert!(Continuation::from_key(&half).unwrap_err().contains("SK"));
        for bad in [
            "",
            "not json",
            r#"{"pk":"a"}"#,
            r#"{"pk":"a","sk":"b","x":1}"#,
        ] {
            assert!(Continuation::decode(bad).is_err(), "{bad}");
        }
    }
}
