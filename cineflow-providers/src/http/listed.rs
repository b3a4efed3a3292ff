//! Entries of a vendor's job list, as reconciliation reads them
//! ([`VideoProvider::find_jobs`](cineflow_core::VideoProvider::find_jobs)).

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// One job of a vendor's list page: what every entry must have (an id and a creation time), and
/// the object itself for the fields reconciliation compares.
#[derive(Debug)]
pub(crate) struct ListedJob {
    /// The JSON path of the entry (`data[3]`, `data.items[3]`), for error messages.
    pub(crate) path: String,
    /// The vendor's job id.
    pub(crate) id: String,
    /// When the vendor created the job.
    pub(crate) created_at: OffsetDateTime,
    fields: Map<String, Value>,
}

impl ListedJob {
    /// Reads the entry `v` found at `path`: an object with a non-empty string `id_key` and a
    /// `created_at` that `read_time` understands (`time_shape` names that shape in the error).
    /// The error names the JSON path at fault.
    pub(crate) fn parse(
        path: String,
        v: &Value,
        id_key: &str,
        read_time: impl FnOnce(&Value) -> Option<OffsetDateTime>,
        time_shape: &str,
    ) -> Result<Self, String> {
        let Value::Object(fields) = v else {
            return Err(format!("{path} is not an object"));
        };
        let id = match fields.get(id_key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(format!(
                    "{path}.{id_key} is missing or not a non-empty string"
                ));
            }
        };
        let created_at = fields
            .get("created_at")
            .and_then(read_time)
            .ok_or_else(|| format!("{path}.created_at is missing or not {time_shape}"))?;
        Ok(Self {
            path,
            id,
            created_at,
            fields: fields.clone(),
        })
    }

    /// Whether this job was created with the fields of `sent` (the body submit sends):
    ///
    /// - `required` fields must be present and equal;
    /// - `reported` fields are compared only when the entry carries the key (a `null` there is
    ///   compared too: it means the field was not set, e.g. no `image_url`; so does an empty or
    ///   blank string, which Sora.hk lists for a task without a reference image).
    ///
    /// Values compare as JSON scalars, a number and its decimal string being the same
    /// (`seconds` `"8"` or `8`). A required field that is missing or not a scalar is an error
    /// naming its path: a job that may be the one looked for is never guessed about.
    pub(crate) fn matches(
        &self,
        sent: &Map<String, Value>,
        required: &[&str],
        reported: &[&str],
    ) -> Result<bool, String> {
        let expected = |key: &str| sent.get(key).and_then(scalar_text);
        for key in required {
            let Some(actual) = self.fields.get(*key).and_then(scalar_text) else {
                return Err(format!(
                    "{}.{key} is missing or not a string, number or boolean",
                    self.path
                ));
            };
            if expected(key).as_deref() != Some(actual.as_str()) {
                return Ok(false);
            }
        }
        for key in reported {
            if let Some(actual) = self.fields.get(*key)
                && scalar_text(actual).filter(|t| !t.trim().is_empty()) != expected(key)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A JSON scalar as text (strings as they are, numbers and booleans rendered); `null`, arrays
/// and objects have none.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn unix(v: &Value) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(v.as_i64()?).ok()
    }

    fn entry(v: Value) -> Result<ListedJob, String> {
        ListedJob::parse("data[0]".into(), &v, "id", unix, "a unix timestamp")
    }

    #[test]
    fn entries_need_an_id_and_a_creation_time_and_errors_name_the_path() {
        let e = entry(json!({"created_at": 1})).unwrap_err();
        assert_eq!(e, "data[0].id is missing or not a non-empty string");
        let e = entry(json!({"id": "v", "created_at": "soon"})).unwrap_err();
        assert_eq!(e, "data[0].created_at is missing or not a unix timestamp");
        assert_eq!(entry(json!([1])).unwrap_err(), "data[0] is not an object");
        assert_eq!(entry(json!({"id": "v", "created_at": 7})).unwrap().id, "v");
    }

    #[test]
    fn required_fields_must_equal_and_reported_ones_only_when_present() {
        let job =
            entry(json!({"id": "v", "created_at": 1, "seconds": 8, "image_url": null})).unwrap();
        let sent = |v: Value| v.as_object().unwrap().clone();
        assert!(
            job.matches(&sent(json!({"seconds": "8"})), &["seconds"], &[])
                .unwrap()
        );
        assert!(
            !job.matches(&sent(json!({"seconds": "4"})), &["seconds"], &[])
                .unwrap()
        );
        // A null `image_url` matches a request without one, not a request with one.
        let with_image = sent(json!({"seconds": "8", "image_url": "https://x/y.png"}));
        assert!(
            !job.matches(&with_image, &["seconds"], &["image_url"])
                .unwrap()
        );
        assert!(
            job.matches(
                &sent(json!({"seconds": 8})),
                &["seconds"],
                &["image_url", "quality"]
            )
            .unwrap()
        );
        // An empty `image_url` is no image either.
        let job = entry(json!({"id": "v", "created_at": 1, "image_url": ""})).unwrap();
        assert!(job.matches(&sent(json!({})), &[], &["image_url"]).unwrap());
        assert!(!job.matches(&with_image, &[], &["image_url"]).unwrap());
        let e = job.matches(&sent(json!({})), &["prompt"], &[]).unwrap_err();
        assert!(e.starts_with("data[0].prompt is missing"), "{e}");
    }
}
