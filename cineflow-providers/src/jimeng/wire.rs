//! Private serde types of both Jimeng backends. Every field is optional and unknown fields are
//! ignored: the proxy is reverse-engineered and answers in several shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Self-hosted jimeng-api proxy
// ---------------------------------------------------------------------------------------------

/// Any answer of `POST /v1/videos/generations`: an async task, a synchronous result, or an error
/// envelope `{code: <negative>, message, data: null}`.
#[derive(Debug, Deserialize)]
pub(super) struct ProxySubmitAnswer {
    /// Negative on errors (`-2000`…`-2009`).
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) message: Option<String>,
    /// Async mode: the task to poll (a string, sometimes a number).
    #[serde(default)]
    pub(super) task_id: Option<Value>,
    /// Sync mode: `[{url, revised_prompt}]`; errors: `null` or upstream details.
    #[serde(default)]
    pub(super) data: Option<Value>,
}

/// One item of a synchronous result (`data[]`).
#[derive(Debug, Deserialize)]
pub(super) struct ProxyDatum {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) revised_prompt: Option<String>,
}

/// `GET /v1/videos/tasks/{task_id}`.
#[derive(Debug, Deserialize)]
pub(super) struct ProxyTask {
    /// `pending | processing | completed | failed`, or an upstream number (`20`, `42`, `45`,
    /// `10`, `50`, `30`), possibly as a string.
    #[serde(default)]
    pub(super) status: Option<Value>,
    /// 0–100.
    #[serde(default)]
    pub(super) progress: Option<f64>,
    /// `{url}` (also tolerated: `{data: [{url}]}`, the proxy's synchronous shape).
    #[serde(default)]
    pub(super) result: Option<ProxyResult>,
    /// A message string (or an object with one).
    #[serde(default)]
    pub(super) error: Option<Value>,
    /// A proxy code (`-2008`), an upstream `fail_code` (`2038`) or a token.
    #[serde(default)]
    pub(super) error_code: Option<Value>,
    /// Upstream `fail_code`, when the proxy passes it through.
    #[serde(default)]
    pub(super) fail_code: Option<Value>,
    /// Upstream `fail_msg`, when the proxy passes it through.
    #[serde(default)]
    pub(super) fail_msg: Option<String>,
}

/// A finished task's result.
#[derive(Debug, Deserialize)]
pub(super) struct ProxyResult {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) data: Option<Vec<ProxyDatum>>,
}

impl ProxyResult {
    /// The first video URL in either shape.
    pub(super) fn video_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .or_else(|| {
                self.data
                    .as_ref()
                    .and_then(|d| d.iter().find_map(|d| d.url.as_deref()))
            })
            .filter(|u| !u.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// Official Volcengine API
// ---------------------------------------------------------------------------------------------

/// `CVSync2AsyncSubmitTask` body.
#[derive(Debug, Serialize)]
pub(super) struct VolcSubmit<'a> {
    pub(super) req_key: &'a str,
    pub(super) prompt: &'a str,
    pub(super) seed: i64,
    pub(super) frames: u32,
    pub(super) aspect_ratio: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) image_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) binary_data_base64: Vec<String>,
}

/// `CVSync2AsyncGetResult` body.
#[derive(Debug, Serialize)]
pub(super) struct VolcGetResult<'a> {
    pub(super) req_key: &'a str,
    pub(super) task_id: &'a str,
}

/// Every answer of the visual API: the business envelope, or a gateway error.
#[derive(Debug, Deserialize)]
pub(super) struct VolcAnswer {
    /// `10000` on success.
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) request_id: Option<String>,
    #[serde(default)]
    pub(super) data: Option<VolcData>,
    /// Gateway errors (signature, key, throttling) come here instead.
    #[serde(default, rename = "ResponseMetadata")]
    pub(super) response_metadata: Option<ResponseMetadata>,
}

/// `data` of a submit or a result.
#[derive(Debug, Deserialize)]
pub(super) struct VolcData {
    /// Submit: the job (a string of digits; tolerated as a number).
    #[serde(default)]
    pub(super) task_id: Option<Value>,
    /// Result: `in_queue | generating | done | not_found | expired`.
    #[serde(default)]
    pub(super) status: Option<String>,
    /// Result: the video when `done`. (There is no progress field.)
    #[serde(default)]
    pub(super) video_url: Option<String>,
}

/// `ResponseMetadata` of a gateway answer.
#[derive(Debug, Deserialize)]
pub(super) struct ResponseMetadata {
    #[serde(default, rename = "RequestId")]
    pub(super) request_id: Option<String>,
    #[serde(default, rename = "Error")]
    pub(super) error: Option<GatewayError>,
}

/// `ResponseMetadata.Error`.
#[derive(Debug, Deserialize)]
pub(super) struct GatewayError {
    #[serde(default, rename = "Code")]
    pub(super) code: Option<String>,
    #[serde(default, rename = "Message")]
    pub(super) message: Option<String>,
}

/// A task id given as a string or a number.
pub(super) fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A message given as a string or an object (`{message}`, `{fail_msg}`, `{msg}`).
pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => ["message", "fail_msg", "msg", "error"]
            .iter()
            .find_map(|k| o.get(*k).and_then(text_of))
            .or_else(|| Some(v.to_string())),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_in_both_shapes() {
        let a: ProxyResult = serde_json::from_str(r#"{"url":"https://v/1.mp4"}"#).unwrap();
        assert_eq!(a.video_url(), Some("https://v/1.mp4"));
        let b: ProxyResult =
            serde_json::from_str(r#"{"created":1,"data":[{"url":"https://v/2.mp4"}]}"#).unwrap();
        assert_eq!(b.video_url(), Some("https://v/2.mp4"));
    }

    #[test]
    fn ids_and_messages_tolerate_several_types() {
        assert_eq!(
            id_string(&serde_json::json!(7392616336519610409u64)).as_deref(),
            Some("7392616336519610409")
        );
        assert_eq!(id_string(&serde_json::json!("")), None);
        assert_eq!(
            text_of(&serde_json::json!({"fail_msg": "OutputVideoRisk"})).as_deref(),
            Some("OutputVideoRisk")
        );
    }

    #[test]
    fn gateway_errors_parse() {
        let a: VolcAnswer = serde_json::from_str(
            r#"{"ResponseMetadata":{"RequestId":"r1","Action":"CVSync2AsyncSubmitTask","Version":"2022-08-31","Service":"cv","Region":"cn-north-1","Error":{"CodeN":100010,"Code":"SignatureDoesNotMatch","Message":"The request signature we calculated does not match"}}}"#,
        )
        .unwrap();
        let e = a.response_metadata.unwrap().error.unwrap();
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(a.code.is_none());
    }
}
