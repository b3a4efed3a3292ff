//! Downloads that keep keys on their origin, and reference images.

use std::time::Duration;

use bytes::Bytes;
use cineflow_core::provider::redact_url;
use cineflow_core::{ByteStream, ErrorCode, ImageKind, ImageRef, ProviderError, SubmitState};
use futures::StreamExt;
use url::Url;

use super::{
    Answer, ApiKey, Call, MAX_ERROR_BODY, MAX_IMAGE_BYTES, Scrub, read_bounded, read_limited,
    refused, same_origin, status_error, transport_error,
};

/// Turns a download response into a [`ByteStream`] (constant memory), with its announced length
/// and type. Chunk errors are retryable network errors.
pub fn stream_body(resp: reqwest::Response) -> ByteStream {
    let len = resp.content_length();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(|e| transport_error(e, Call::Download)));
    ByteStream::new(stream)
        .with_content_length(len)
        .with_content_type(ct)
}

/// Streams a video from `url` (constant memory).
///
/// - `key` goes out as `Authorization: Bearer` only when `url` has the origin (scheme, host and
///   port) of `base`: a CDN or a signed blob URL never sees it.
/// - Redirects are followed by the client's policy; reqwest drops `Authorization` on every
///   redirect that leaves the origin, so the key never follows the video elsewhere.
/// - A URL that is not http(s) is a non-retryable [`DownloadFailed`](ErrorCode::DownloadFailed).
/// - A non-2xx answer is read (at most [`MAX_ERROR_BODY`] bytes) and handed to `classify`,
///   usually [`download_error`] or the adapter's error table. It is never a stream.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    key: Option<&ApiKey>,
    base: &Url,
    timeout: Duration,
    classify: impl FnOnce(&Answer) -> ProviderError,
) -> Result<ByteStream, ProviderError> {
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ProviderError::new(
                ErrorCode::DownloadFailed,
                format!("download URL {} is not an http(s) URL", redact_url(url)),
            )
            .with_retryable(false)
            .with_submit_state(SubmitState::NotSent)
        })?;
    let same = same_origin(&parsed, base);
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let mut call = client.get(parsed).timeout(timeout);
    match key {
        Some(key) if same => call = call.bearer_auth(key.expose()),
        Some(_) => {
            tracing::debug!(
                host,
                "the video is on another origin: downloading without the API key"
            );
        }
        None => {}
    }
    let resp = call
        .send()
        .await
        .map_err(|e| transport_error(e, Call::Download))?;
    if resp.status().is_success() {
        return Ok(stream_body(resp));
    }
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_bounded(resp, MAX_ERROR_BODY).await;
    Err(classify(&Answer {
        status,
        headers,
        body,
    }))
}

/// The error of a failed download by its HTTP status ([`status_error`] for
/// [`Call::Download`]); the message names the URL without its query (a signature).
pub fn download_error(
    answer: &Answer,
    url: &str,
    secrets: &(impl Scrub + ?Sized),
) -> ProviderError {
    status_error(
        answer.status,
        &answer.headers,
        &answer.body,
        Call::Download,
        secrets,
        format!(
            "download of {} answered HTTP {}",
            redact_url(url),
            answer.status
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Reference images
// ---------------------------------------------------------------------------------------------

/// Loads a reference image's bytes and media type, within `timeout`: a `data:` URL is decoded,
/// a path is read (off the runtime), an http(s) URL is fetched with `client` (without any
/// credentials). Everything fails before the vendor is called, so every error is
/// [`NotSent`](SubmitState::NotSent):
///
/// - [`Timeout`](ErrorCode::Timeout) when `timeout` passes;
/// - [`InvalidRequest`](ErrorCode::InvalidRequest) for an unreadable image, one larger than
///   [`MAX_IMAGE_BYTES`], or one that is not JPEG, PNG or WebP. The type is the declared one (the
///   `data:` URL's, the `Content-Type`), else the file name's, else the bytes' signature.
pub async fn load_image(
    client: &reqwest::Client,
    image: &ImageRef,
    timeout: Duration,
) -> Result<(Bytes, String), ProviderError> {
    let (bytes, declared) = tokio::time::timeout(timeout, read_image(client, image))
        .await
        .map_err(|_| {
            ProviderError::new(
                ErrorCode::Timeout,
                "fetching the reference image took too long; nothing was sent to the vendor",
            )
            .with_submit_state(SubmitState::NotSent)
        })??;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(refused(format!(
            "reference image is larger than {MAX_IMAGE_BYTES} bytes"
        )));
    }
    let mime = media_type(declared, image.as_str(), &bytes)?;
    Ok((bytes, mime))
}

/// The image's bytes (at most one more than [`MAX_IMAGE_BYTES`] from a URL) and its declared
/// type, if any.
async fn read_image(
    client: &reqwest::Client,
    image: &ImageRef,
) -> Result<(Bytes, Option<String>), ProviderError> {
    use base64::Engine;
    match image.kind() {
        ImageKind::DataUrl => {
            let (head, data) = image
                .as_str()
                .split_once(',')
                .ok_or_else(|| refused("malformed data URL"))?;
            let declared = head.trim_start_matches("data:").split(';').next();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| refused(format!("data URL is not valid base64: {e}")))?;
            Ok((Bytes::from(bytes), declared.map(str::to_owned)))
        }
        ImageKind::Path => {
            let path = image.as_str();
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| refused(format!("cannot read reference image {path:?}: {e}")))?;
            Ok((Bytes::from(bytes), None))
        }
        ImageKind::Url => {
            let not_sent =
                |e| transport_error(e, Call::Other).with_submit_state(SubmitState::NotSent);
            let resp = client.get(image.as_str()).send().await.map_err(not_sent)?;
            if !resp.status().is_success() {
                return Err(refused(format!(
                    "reference image {} answered HTTP {}",
                    redact_url(image.as_str()),
                    resp.status().as_u16()
                )));
            }
            let declared = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match read_limited(resp, MAX_IMAGE_BYTES + 1).await {
                (body, None) => Ok((Bytes::from(body), declared)),
                (_, Some(e)) => Err(not_sent(e)),
            }
        }
    }
}

/// The accepted media type of an image: declared, else by name, else by signature.
pub(super) fn media_type(
    declared: Option<String>,
    name: &str,
    bytes: &[u8],
) -> Result<String, ProviderError> {
    let declared = declared
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty() && !t.ends_with("/octet-stream"));
    let found = declared
        .or_else(|| type_from_name(name).map(str::to_owned))
        .or_else(|| type_from_signature(bytes).map(str::to_owned));
    match found.as_deref() {
        Some("image/jpeg" | "image/jpg" | "image/pjpeg") => Ok("image/jpeg".to_owned()),
        Some("image/png") => Ok("image/png".to_owned()),
        Some("image/webp") => Ok("image/webp".to_owned()),
        Some(other) => Err(refused(format!(
            "reference image type {other:?} is not accepted: use JPEG, PNG or WebP"
        ))),
        None => Err(refused(
            "the reference image's type is unknown: use a JPEG, PNG or WebP image",
        )),
    }
}

fn type_from_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    let ext = path.rsplit_once('.')?.1;
    match ext {
        "jpg" | "jpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "webp" => Some("image/webp"),
        "gif" => Some("image/gif"),
        _ => None,
    }
}

fn type_from_signature(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The usual file extension of an accepted media type: `jpg`, `webp`, else `png`.
pub fn image_extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        _ => "png",
    }
}
