//! Downloads that keep keys on their origin, and reference images; both reach only addresses
//! the [`NetworkPolicy`] allows, and read local files only when they are regular and small.

use std::time::Duration;

use bytes::Bytes;
use cineflow_core::provider::redact_url;
use cineflow_core::{ByteStream, ErrorCode, ImageKind, ImageRef, ProviderError, SubmitState};
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use url::Url;

use super::guard::{AddressRefused, Guard, NetworkPolicy, refusal_in};
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

/// Streams a video from `url` (constant memory), with a client given by the caller.
///
/// - `key` goes out as `Authorization: Bearer` only when `url` has the origin (scheme, host and
///   port) of `base`: a CDN or a signed blob URL never sees it.
/// - Redirects are followed by the client's policy; reqwest drops `Authorization` on every
///   redirect that leaves the origin, so the key never follows the video elsewhere.
/// - Only `base`'s origin and addresses `network` allows are reached: `url`'s host is resolved
///   and checked before the request, and the final URL after redirects before the body is used
///   (a client that is not the adapter's own cannot check the address it connects to: see
///   [`NetworkPolicy`]). A refused address is a non-retryable
///   [`DownloadFailed`](ErrorCode::DownloadFailed), [`NotSent`](SubmitState::NotSent).
/// - A URL that is not http(s) is a non-retryable [`DownloadFailed`](ErrorCode::DownloadFailed).
/// - A non-2xx answer is read (at most [`MAX_ERROR_BODY`] bytes) and handed to `classify`,
///   usually [`download_error`] or the adapter's error table. It is never a stream.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    key: Option<&ApiKey>,
    base: &Url,
    timeout: Duration,
    network: &NetworkPolicy,
    classify: impl FnOnce(&Answer) -> ProviderError,
) -> Result<ByteStream, ProviderError> {
    let guard = Guard::unguarded_client(network.clone(), Some(base));
    download_guarded(client, &guard, url, key, base, timeout, classify).await
}

/// [`download`] through `guard`.
pub(crate) async fn download_guarded(
    client: &reqwest::Client,
    guard: &Guard,
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
    let refused_download = |e: &AddressRefused| {
        ProviderError::new(
            ErrorCode::DownloadFailed,
            format!("download of {} {e}", redact_url(url)),
        )
        .with_retryable(false)
        .with_submit_state(SubmitState::NotSent)
    };
    checked(guard, &parsed, timeout, Call::Download)
        .await?
        .map_err(|e| refused_download(&e))?;
    let same = same_origin(&parsed, base);
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let mut call = client.get(parsed.clone()).timeout(timeout);
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
    let resp = call.send().await.map_err(|e| match refusal_in(&e) {
        Some(r) => refused_download(r),
        None => transport_error(e, Call::Download),
    })?;
    guard
        .check_final(&parsed, &resp)
        .await
        .map_err(|e| refused_download(&e))?;
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

/// [`Guard::check`] within `timeout`: a look-up that takes longer is a retryable
/// [`Timeout`](ErrorCode::Timeout), [`NotSent`](SubmitState::NotSent).
async fn checked(
    guard: &Guard,
    url: &Url,
    timeout: Duration,
    call: Call,
) -> Result<Result<(), AddressRefused>, ProviderError> {
    tokio::time::timeout(timeout, guard.check(url))
        .await
        .map_err(|_| {
            ProviderError::new(
                ErrorCode::Timeout,
                format!("{call:?} call failed: resolving the host took too long"),
            )
            .with_submit_state(SubmitState::NotSent)
        })
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
/// a path is read, an http(s) URL is fetched with `client` (without any credentials) from an
/// address `network` allows (checked as [`download`] does). Everything fails before the vendor
/// is called, so every error is [`NotSent`](SubmitState::NotSent):
///
/// - [`Timeout`](ErrorCode::Timeout) when `timeout` passes (a file read stops then too);
/// - [`InvalidRequest`](ErrorCode::InvalidRequest) for an unreadable image, a path that is not a
///   regular file (a device such as `/dev/zero`, a FIFO, a directory), one larger than
///   [`MAX_IMAGE_BYTES`] (a file's size is checked before it is read, and the read is bounded),
///   a URL on a refused address, or an image that is not JPEG, PNG or WebP. The type is the
///   declared one (the `data:` URL's, the `Content-Type`), else the file name's, else the bytes'
///   signature.
pub async fn load_image(
    client: &reqwest::Client,
    image: &ImageRef,
    timeout: Duration,
    network: &NetworkPolicy,
) -> Result<(Bytes, String), ProviderError> {
    let guard = Guard::unguarded_client(network.clone(), None);
    load_image_guarded(client, &guard, image, timeout).await
}

/// [`load_image`] through `guard`.
pub(crate) async fn load_image_guarded(
    client: &reqwest::Client,
    guard: &Guard,
    image: &ImageRef,
    timeout: Duration,
) -> Result<(Bytes, String), ProviderError> {
    let (bytes, declared) = tokio::time::timeout(timeout, read_image(client, guard, image))
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

/// The image's bytes (at most one more than [`MAX_IMAGE_BYTES`]) and its declared type, if any.
async fn read_image(
    client: &reqwest::Client,
    guard: &Guard,
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
        ImageKind::Path => Ok((read_image_file(image.as_str()).await?, None)),
        ImageKind::Url => fetch_image(client, guard, image.as_str()).await,
    }
}

/// Reads a local image: it must be a regular file (not a device, FIFO or directory) of at most
/// [`MAX_IMAGE_BYTES`], checked before it is opened and again on the open file, and the read
/// is bounded. The read goes in chunks on tokio's blocking pool, so dropping the future (a
/// timeout) stops it between chunks.
async fn read_image_file(path: &str) -> Result<Bytes, ProviderError> {
    let unreadable =
        |e: std::io::Error| refused(format!("cannot read reference image {path:?}: {e}"));
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            return Err(refused(format!(
                "reference image {path:?} is not a regular file ({}): only image files are read",
                file_kind(meta)
            )));
        }
        if meta.len() > MAX_IMAGE_BYTES as u64 {
            return Err(refused(format!(
                "reference image {path:?} is {} bytes, larger than {MAX_IMAGE_BYTES} bytes",
                meta.len()
            )));
        }
        Ok(())
    };
    check(&tokio::fs::metadata(path).await.map_err(unreadable)?)?;
    let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let meta = file.metadata().await.map_err(unreadable)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(
        usize::try_from(meta.len())
            .unwrap_or(0)
            .min(MAX_IMAGE_BYTES),
    );
    file.take(MAX_IMAGE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(unreadable)?;
    Ok(Bytes::from(bytes))
}

/// What a file that is not a regular file is, for messages.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Fetches an image URL (at most one more than [`MAX_IMAGE_BYTES`]) from an allowed address.
async fn fetch_image(
    client: &reqwest::Client,
    guard: &Guard,
    url: &str,
) -> Result<(Bytes, Option<String>), ProviderError> {
    let not_sent = |e| transport_error(e, Call::Other).with_submit_state(SubmitState::NotSent);
    let refused_image =
        |e: &AddressRefused| refused(format!("reference image {} {e}", redact_url(url)));
    let parsed = Url::parse(url).map_err(|e| {
        refused(format!(
            "reference image {} is not a URL: {e}",
            redact_url(url)
        ))
    })?;
    guard.check(&parsed).await.map_err(|e| refused_image(&e))?;
    let resp = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| match refusal_in(&e) {
            Some(r) => refused_image(r),
            None => not_sent(e),
        })?;
    guard
        .check_final(&parsed, &resp)
        .await
        .map_err(|e| refused_image(&e))?;
    if !resp.status().is_success() {
        return Err(refused(format!(
            "reference image {} answered HTTP {}",
            redact_url(url),
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
