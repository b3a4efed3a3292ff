//! [`VendorPayload`]: a vendor's answer kept as compact JSON text.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// The vendor's last answer about a job ([`Attempt::vendor_payload`](crate::Attempt)), kept as
/// its JSON text rather than as a [`Value`] tree.
///
/// A task keeps one, and a task in flight is held twice (the store's copy and the one in
/// hand) and copied at every write: as text an answer is one allocation and a quarter of the
/// memory of the tree (a 14-field answer: about 0.8 KB against 2–3 KB), and the text is
/// shared, not copied, when the payload is cloned (the memory store's copy of a task and the
/// one in hand hold one text between them). It serializes as the JSON it holds (not as a
/// string), so stored tasks and sidecars read as before.
///
/// ```
/// use cineflow_core::VendorPayload;
/// use serde_json::json;
///
/// let payload = VendorPayload::from(json!({"status": "running", "progress": 40}));
/// assert_eq!(payload.to_value()["progress"], 40);
/// assert_eq!(payload.as_json(), r#"{"status":"running","progress":40}"#);
/// assert!(VendorPayload::default().is_null());
/// assert_eq!(serde_json::to_string(&payload)?, payload.as_json());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct VendorPayload(Option<Arc<RawValue>>);

impl VendorPayload {
    /// No answer (`null`).
    pub fn null() -> Self {
        Self(None)
    }

    /// `value` as text; `null` stays [`null`](Self::null).
    pub fn from_value(value: &Value) -> Self {
        if value.is_null() {
            return Self(None);
        }
        // Serializing a `Value` cannot fail (its map keys are strings, its numbers finite).
        Self(serde_json::value::to_raw_value(value).ok().map(Arc::from))
    }

    /// The answer parsed back into a [`Value`] (`Value::Null` when there is none).
    pub fn to_value(&self) -> Value {
        self.0
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    }

    /// The answer's JSON text (`null` when there is none).
    pub fn as_json(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }

    /// Whether there is no answer.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }
}

impl From<Value> for VendorPayload {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

impl PartialEq for VendorPayload {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl fmt::Debug for VendorPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

/// The JSON text.
impl fmt::Display for VendorPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl Serialize for VendorPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for VendorPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<Box<RawValue>>::deserialize(deserializer).map(|raw| Self(raw.map(Arc::from)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_payload_round_trips_through_text_and_values_unchanged() {
        let v = json!({"b": 1, "a": [1.5, "x", null, {"z": 9e76}], "c": {"d": true}});
        let p = VendorPayload::from(v.clone());
        assert_eq!(p.to_value(), v);
        let text = serde_json::to_string(&p).unwrap();
        let back: VendorPayload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_value(), v);
        // From a `Value` too (not only from text).
        let back: VendorPayload = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back.to_value(), v);
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn a_cloned_payload_shares_its_text_instead_of_copying_it() {
        let p = VendorPayload::from(json!({"id": "task_1", "status": "running"}));
        let q = p.clone();
        assert_eq!(p, q);
        assert!(
            std::ptr::eq(p.as_json(), q.as_json()),
            "the clone copied the text"
        );
        let read: VendorPayload = serde_json::from_str(p.as_json()).unwrap();
        assert!(!std::ptr::eq(read.as_json(), p.as_json()));
        assert!(std::ptr::eq(read.clone().as_json(), read.as_json()));
    }

    #[test]
    fn null_is_no_payload_and_is_written_as_null() {
        let p = VendorPayload::from(Value::Null);
        assert!(p.is_null());
        assert_eq!(p, VendorPayload::default());
        assert_eq!(serde_json::to_string(&p).unwrap(), "null");
        let back: VendorPayload = serde_json::from_str("null").unwrap();
        assert!(back.is_null());
        assert_eq!(back.to_value(), Value::Null);
    }
}
