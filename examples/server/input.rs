//! Reading requests: query parameters, JSON bodies and path ids, each error naming its field.

use std::collections::HashMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request};
use axum::http::request::Parts;
use cineflow::core::{PageRequest, SortOrder};
use serde_json::{Map, Value};

use crate::app::error::{ApiError, ApiResult};

/// Largest `page_size` (CineFlow's console asks for 200; its draft said 100).
pub(crate) const MAX_PAGE_SIZE: u32 = 500;

/// The query string as `name → value` (the last value wins). Unknown names are ignored.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.to_string()))?;
        let map = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Self(map))
    }
}

impl Params {
    /// The raw value, if given and not empty.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A value parsed with `FromStr`.
    pub(crate) fn parse<T: FromStr>(&self, name: &str, expected: &str) -> ApiResult<Option<T>> {
        self.str(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(name, format!("expected {expected}, got {v:?}")))
            })
            .transpose()
    }

    /// `true` / `false`.
    pub(crate) fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.parse(name, "true or false")
    }

    /// `page` and `page_size` (defaults 1 and 20).
    pub(crate) fn page(&self) -> ApiResult<PageRequest> {
        let page: u32 = self.parse("page", "an integer >= 1")?.unwrap_or(1);
        if page == 0 {
            return Err(ApiError::invalid("page", "must be >= 1"));
        }
        let size: u32 = self
            .parse("page_size", "an integer from 1 to 500")?
            .unwrap_or(20);
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(ApiError::invalid(
                "page_size",
                format!("must be 1..={MAX_PAGE_SIZE}, got {size}"),
            ));
        }
        Ok(PageRequest::new(page, size))
    }

    /// `sort`, one of `keys` (the first is the default).
    pub(crate) fn sort<'k>(&self, keys: &[&'k str]) -> ApiResult<&'k str> {
        match self.str("sort") {
            None => Ok(keys[0]),
            Some(s) => keys.iter().find(|k| **k == s).copied().ok_or_else(|| {
                ApiError::invalid(
                    "sort",
                    format!("unknown sort key {s:?}; one of {}", keys.join(", ")),
                )
            }),
        }
    }

    /// `order`: `asc` or `desc`, else `default`.
    pub(crate) fn order(&self, default: SortOrder) -> ApiResult<SortOrder> {
        match self.str("order") {
            None => Ok(default),
            Some("asc") => Ok(SortOrder::Asc),
            Some("desc") => Ok(SortOrder::Desc),
            Some(o) => Err(ApiError::invalid(
                "order",
                format!("expected asc or desc, got {o:?}"),
            )),
        }
    }
}

/// A JSON object body. Malformed JSON, a body that is not an object or one larger than the
/// limit is a 400 naming `body`.
#[derive(Debug)]
pub(crate) struct JsonObject(pub(crate) Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        parse_object(&bytes).map(Self)
    }
}

/// Parses a JSON object.
pub(crate) fn parse_object(bytes: &[u8]) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("body", "expected a JSON object")),
        Err(e) => Err(ApiError::invalid("body", format!("malformed JSON: {e}"))),
    }
}

/// Typed reads of a JSON object's fields, each error naming the field.
pub(crate) trait Fields {
    /// A field that is present and not null.
    fn present(&self, name: &str) -> Option<&Value>;

    /// A string field.
    fn string(&self, name: &str) -> ApiResult<Option<String>> {
        self.present(name)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid(name, "expected a string"))
            })
            .transpose()
    }

    /// A non-negative integer field that fits `u32`.
    fn u32(&self, name: &str) -> ApiResult<Option<u32>> {
        self.present(name)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ApiError::invalid(name, "expected a non-negative integer"))
            })
            .transpose()
    }

    /// A boolean field.
    fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.present(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| ApiError::invalid(name, "expected true or false"))
            })
            .transpose()
    }

    /// A string field parsed with `FromStr` (enums), naming the accepted values on error.
    fn parsed<T: FromStr>(&self, name: &str, expected: &str) -> ApiResult<Option<T>> {
        self.string(name)?
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::invalid(name, format!("expected {expected}, got {s:?}")))
            })
            .transpose()
    }
}

impl Fields for Map<String, Value> {
    fn present(&self, name: &str) -> Option<&Value> {
        self.get(name).filter(|v| !v.is_null())
    }
}

/// A path id of type `T` (`TaskId`, `RunId`, …): 400 naming `id` if it is not one.
pub(crate) fn id<T: FromStr>(raw: &str) -> ApiResult<T> {
    raw.parse()
        .map_err(|_| ApiError::invalid("id", format!("{raw:?} is not an id (32 hex characters)")))
}
