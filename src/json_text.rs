//! A JSON document kept as the text it was written as: history details and email payloads go
//! to the database as text, so they are serialized once, straight from the structs that hold
//! them, with no tree of values built and dropped on the way (a fifth of the worker's CPU in a
//! firing pass). Whoever looks inside gets the values, parsed the first time they are asked for.

use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JSON document as text, read as a [`serde_json::Value`] through `Deref` (parsed once).
#[derive(Clone)]
pub struct JsonText {
    text: String,
    parsed: OnceLock<Value>,
}

impl JsonText {
    /// `value` serialized (`null` for the rare value serde cannot write as JSON, such as a map
    /// with keys that are not strings).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        // A fired timer's details are about 700 bytes: room for them at once, where serde_json
        // starts at 128 and grows four times.
        let mut buf = Vec::with_capacity(1024);
        let text = match serde_json::to_writer(&mut buf, value) {
            Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| "null".to_owned()),
            Err(_) => "null".to_owned(),
        };
        Self {
            text,
            parsed: OnceLock::new(),
        }
    }

    /// The document `text`, checked to be JSON.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(&text)?;
        Ok(Self {
            text,
            parsed: OnceLock::from(value),
        })
    }

    /// The text, as written to the database.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values, owned.
    pub fn into_value(self) -> Value {
        match self.parsed.into_inner() {
            Some(v) => v,
            None => parse_valid(&self.text),
        }
    }
}

/// The values of a text this type wrote or checked (`null` if it were not JSON, which no
/// constructor allows).
fn parse_valid(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl std::ops::Deref for JsonText {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.parsed.get_or_init(|| parse_valid(&self.text))
    }
}

impl Default for JsonText {
    /// `null`.
    fn default() -> Self {
        Self::from(Value::Null)
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        Self {
            text: value.to_string(),
            parsed: OnceLock::from(value),
        }
    }
}

impl PartialEq for JsonText {
    /// The same values (key order and spacing aside).
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text || **self == **other
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Details<'a> {
        timer: &'a str,
        skipped: Vec<u32>,
        reason: Option<&'a str>,
    }

    #[test]
    fn a_struct_written_as_text_reads_back_as_its_values() {
        let d = JsonText::of(&Details {
            timer: "partner_response_deadline",
            skipped: vec![1, 2],
            reason: None,
        });
        assert_eq!(
            d.as_str(),
            r#"{"timer":"partner_response_deadline","skipped":[1,2],"reason":null}"#
        );
        assert_eq!(d["timer"], "partner_response_deadline");
        assert_eq!(d["skipped"][1], 2);
        assert!(d["missing"].is_null());
        assert_eq!(
            d,
            JsonText::from(
                json!({"reason": null, "skipped": [1, 2], "timer": "partner_response_deadline"})
            )
        );
        assert_ne!(d, JsonText::from(json!({"timer": "other"})));
    }

    #[test]
    fn text_that_is_not_json_is_refused_and_the_default_is_null() {
        assert!(JsonText::parse("{\"a\":".to_owned()).is_err());
        let ok = JsonText::parse(" {\"a\": 1} ".to_owned()).expect("json");
        assert_eq!(ok["a"], 1);
        assert_eq!(ok.as_str(), " {\"a\": 1} ");
        assert!(JsonText::default().is_null());
        assert_eq!(JsonText::default().as_str(), "null");
    }

    #[test]
    fn it_serializes_as_its_values_and_moves_them_out() {
        let d = JsonText::parse(r#"{"b":1,"a":[true]}"#.to_owned()).expect("json");
        assert_eq!(
            serde_json::to_string(&d).expect("serialize"),
            r#"{"a":[true],"b":1}"#
        );
        let back: JsonText = serde_json::from_str(r#"{"x":"y"}"#).expect("deserialize");
        assert_eq!(back.into_value(), json!({"x": "y"}));
        assert_eq!(JsonText::of(&[1, 2]).into_value(), json!([1, 2]));
    }
}
