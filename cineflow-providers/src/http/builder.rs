//! What every HTTP adapter's builder shares: the id, base URL, client, timeouts and network
//! policy ([`ClientConfig`]), checked once into an [`Endpoint`] the provider keeps.

use std::fmt;

use bytes::Bytes;
use cineflow_core::callback::CallbackContext;
use cineflow_core::{
    ByteStream, Error, ImageKind, ImageRef, ProviderError, ProviderId, ProviderJob,
};
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::fetch::{download_error, download_guarded, load_image_guarded};
use super::guard::{Guard, NETWORK_ALLOW_VAR, NetworkPolicy};
use super::{Answer, ApiKey, Scrub, Timeouts, base_url, guarded_client, join, shown_url};

/// The first variable among `names` that is set and not blank, trimmed.
pub fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// The key an adapter needs, checked: present, not empty and fit for an HTTP header.
///
/// # Errors
///
/// [`Error::Config`] naming the provider and the environment variables `vars` that can hold the
/// key, or saying that it has characters a header cannot carry.
pub fn require_key(key: Option<ApiKey>, id: &ProviderId, vars: &[&str]) -> Result<ApiKey, Error> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(Error::Config(format!(
            "provider {id}: missing API key: call with_api_key or set {}",
            vars.join(" or ")
        )));
    };
    if !key.is_header_safe() {
        return Err(Error::Config(format!(
            "provider {id}: the API key contains characters not allowed in an HTTP header"
        )));
    }
    Ok(key)
}

/// The setters every HTTP adapter's builder shares, over its [`ClientConfig`]: provider id, base
/// URL, shared client, timeouts and network policy.
///
/// An adapter's builder implements [`client_config`](Self::client_config) and gets the `with_*`
/// setters; builders that take one API key also implement [`ApiKeyBuilder`]. Every adapter has
/// the same entry points: `X::builder()` (or a preset such as `OpenAiCompat::openai()`) and
/// `XBuilder::from_env()` return an `XBuilder`, and `XBuilder::build()` returns
/// `Result<X, Error>`. Bring the traits into scope with `use cineflow_providers::{ApiKeyBuilder,
/// HttpBuilder};`.
///
/// ```
/// # #[cfg(feature = "sorahk")]
/// # fn main() -> Result<(), cineflow_core::Error> {
/// use std::time::Duration;
/// use cineflow_providers::http::{NetworkPolicy, Timeouts};
/// use cineflow_providers::sorahk::SoraHk;
/// use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
///
/// let provider = SoraHk::builder()
///     .with_api_key("sk-example")
///     .with_base_url("https://proxy.example/v1")
///     .with_id("sorahk_eu")
///     .with_timeouts(Timeouts::uniform(Duration::from_secs(30)))
///     .with_network_policy(NetworkPolicy::new())
///     .build()?;
/// # let _ = provider;
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sorahk"))]
/// # fn main() {}
/// ```
///
/// A custom adapter shares the setters the same way:
///
/// ```
/// use cineflow_providers::HttpBuilder;
/// use cineflow_providers::http::ClientConfig;
///
/// struct MyBuilder {
///     http: ClientConfig,
/// }
///
/// impl HttpBuilder for MyBuilder {
///     fn client_config(&mut self) -> &mut ClientConfig {
///         &mut self.http
///     }
/// }
///
/// let mut b = MyBuilder { http: ClientConfig::new("mine", None, &["MY_BASE_URL"]) }
///     .with_base_url("https://api.example/v1")
///     .with_id("mine_2");
/// let endpoint = b.http.clone().build()?;
/// assert_eq!(endpoint.id().as_str(), "mine_2");
/// # Ok::<(), cineflow_core::Error>(())
/// ```
///
/// # Errors of `build`
///
/// Every adapter's `build` checks these settings the way [`ClientConfig::build`] does:
/// [`Error::InvalidId`] when the id is not a valid slug; [`Error::Config`] when there is no base
/// URL (an adapter without a default one), when it is not http(s) or carries credentials, a query
/// or a fragment, when [`NETWORK_ALLOW_VAR`] was read and is invalid, or when the HTTP client
/// cannot be built. A builder that takes one API key ([`ApiKeyBuilder`]) also fails with
/// [`Error::Config`] when the key is missing (the message names the environment variables that
/// can hold it) or cannot go in an HTTP header. What else a `build` checks is in its own
/// documentation.
pub trait HttpBuilder: Sized {
    /// The builder's shared settings.
    fn client_config(&mut self) -> &mut ClientConfig;

    /// Sets the provider id. Default: the adapter's (e.g. `sorahk`, `openai`, `jimeng`).
    fn with_id(mut self, id: impl Into<String>) -> Self {
        self.client_config().id = Some(id.into());
        self
    }

    /// Sets the API base URL (tests, proxies, resellers), e.g. `https://my-reseller.example/v1`.
    /// Default: the adapter's or preset's; it must be http(s) without credentials, query or
    /// fragment (checked by `build`).
    fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.client_config().base_url = Some(url.into());
        self
    }

    /// Shares an existing client (connection pool). Per-call timeouts still come from
    /// [`with_timeouts`](Self::with_timeouts); the connect timeout and redirect policy are the
    /// client's. The client must not carry default `Authorization` headers. Default: a client
    /// built from the timeouts.
    ///
    /// A shared client cannot carry the address guard in its resolver: download and image URLs
    /// are resolved and checked before each request and after its redirects instead (see
    /// [`NetworkPolicy`]).
    fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.client_config().client = Some(client);
        self
    }

    /// Sets the timeouts of API calls, downloads and reference-image fetches. Default:
    /// [`Timeouts::default`].
    fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.client_config().timeouts = timeouts;
        self
    }

    /// Sets which addresses video downloads and reference-image fetches may reach besides
    /// public ones, e.g. `NetworkPolicy::new().allow_loopback()` for a local test CDN. The base
    /// URL's origin is always allowed. Default: [`NetworkPolicy::new`] (loopback, private,
    /// link-local and metadata addresses refused), plus the allow-list in [`NETWORK_ALLOW_VAR`]
    /// when the environment is read.
    fn with_network_policy(mut self, policy: NetworkPolicy) -> Self {
        self.client_config().network = policy;
        self
    }
}

/// The key setter of adapter builders that take one API key (all but
/// `JimengOfficialBuilder`, which takes an access key
/// and a secret key). See [`HttpBuilder`] for an example.
pub trait ApiKeyBuilder: HttpBuilder {
    /// Stores the key (the adapter decides how: the Jimeng proxy splits comma-separated tokens).
    fn set_api_key(&mut self, key: String);

    /// Sets the API key, sent only to the base URL's origin and never shown in `Debug`, logs or
    /// errors; replaces any key set before. Default: none (`from_env` reads the adapter's
    /// variables); `build` fails without one.
    fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.set_api_key(key.into());
        self
    }
}

/// Implements `Default` (as `new()`) and [`HttpBuilder`] over the builder's `http:
/// ClientConfig` field; with `api_key`, also [`ApiKeyBuilder`] storing the key in its
/// `api_key: Option<ApiKey>` field. One line per adapter builder.
macro_rules! http_builder {
    ($builder:ty) => {
        impl Default for $builder {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::http::HttpBuilder for $builder {
            fn client_config(&mut self) -> &mut $crate::http::ClientConfig {
                &mut self.http
            }
        }
    };
    ($builder:ty, api_key) => {
        $crate::http::http_builder!($builder);

        impl $crate::http::ApiKeyBuilder for $builder {
            fn set_api_key(&mut self, key: String) {
                self.api_key = Some($crate::http::ApiKey::new(key));
            }
        }

        impl $builder {
            /// The builder with the environment read
            /// ([`ClientConfig::load_env_with_key`](crate::http::ClientConfig::load_env_with_key)),
            /// the key from the first of `key_vars` set and not blank.
            fn with_env_key(mut self, key_vars: &[&str]) -> Self {
                self.http.load_env_with_key(&mut self.api_key, key_vars);
                self
            }
        }
    };
}
pub(crate) use http_builder;

/// Writes a builder's `with_callback_url(url)`, with the doc given before its name, over the
/// builder's `callback_url: Option<String>` field (which `build` checks with
/// [`check_callback_url`](super::check_callback_url)).
// Only the adapters that take a callback URL use this.
#[allow(unused_macros)]
macro_rules! callback_url_setter {
    ($(#[$doc:meta])* with_callback_url;) => {
        $(#[$doc])*
        pub fn with_callback_url(mut self, url: impl Into<String>) -> Self {
            self.callback_url = Some(url.into());
            self
        }
    };
}
#[allow(unused_imports)]
pub(crate) use callback_url_setter;

/// The settings every HTTP adapter's builder has — provider id, base URL, a shared client,
/// timeouts, network policy — with the adapter's defaults. A builder embeds one, gets the
/// `with_*` setters by implementing [`HttpBuilder`], and calls [`build`](Self::build).
///
/// `Debug` shows the base URL without credentials, query or fragment.
#[derive(Clone)]
pub struct ClientConfig {
    default_id: &'static str,
    default_base_url: Option<&'static str>,
    base_url_vars: &'static [&'static str],
    /// The provider id; default: the adapter's.
    pub id: Option<String>,
    /// The API base URL; default: the adapter's.
    pub base_url: Option<String>,
    /// A shared client (connection pool). It must not carry default `Authorization` headers.
    /// Default: one built by [`client`](super::client) from the timeouts.
    pub client: Option<reqwest::Client>,
    /// Per-call timeouts. Default: [`Timeouts::default`].
    pub timeouts: Timeouts,
    /// Which addresses downloads and reference images may reach besides public ones (the base
    /// URL's origin is always allowed). Default: [`NetworkPolicy::new`], only public addresses.
    pub network: NetworkPolicy,
    /// An invalid [`NETWORK_ALLOW_VAR`], reported by [`build`](Self::build).
    network_env_error: Option<String>,
}

impl ClientConfig {
    /// Settings with an adapter's defaults: its id, its base URL (`None` when the user must give
    /// one) and the environment variables that may override the base URL, in order of
    /// preference.
    pub fn new(
        default_id: &'static str,
        default_base_url: Option<&'static str>,
        base_url_vars: &'static [&'static str],
    ) -> Self {
        Self {
            default_id,
            default_base_url,
            base_url_vars,
            id: None,
            base_url: None,
            client: None,
            timeouts: Timeouts::default(),
            network: NetworkPolicy::new(),
            network_env_error: None,
        }
    }

    /// Reads the base URL variables: the first one set and not blank replaces the base URL;
    /// none set changes nothing. Then adds the allow-list in [`NETWORK_ALLOW_VAR`], if set, to
    /// the network policy (an invalid one fails [`build`](Self::build)).
    pub fn load_env(&mut self) {
        if let Some(url) = env_var(self.base_url_vars) {
            self.base_url = Some(url);
        }
        if let Some(list) = env_var(&[NETWORK_ALLOW_VAR]) {
            match self.network.clone().allow_list(&list) {
                Ok(policy) => self.network = policy,
                Err(e) => self.network_env_error = Some(format!("{NETWORK_ALLOW_VAR}: {e}")),
            }
        }
    }

    /// [`load_env`](Self::load_env), and reads an adapter's key: the first of `key_vars` set and
    /// not blank replaces `key`; none set leaves it as it is.
    pub fn load_env_with_key(&mut self, key: &mut Option<ApiKey>, key_vars: &[&str]) {
        if let Some(k) = ApiKey::from_env(key_vars) {
            *key = Some(k);
        }
        self.load_env();
    }

    /// Checks the id and the base URL ([`base_url`](super::base_url)) and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] when the id is not a valid slug; [`Error::Config`] when there is no
    /// base URL (naming its variables), when it is not http(s) or carries credentials, a query or
    /// a fragment, when [`NETWORK_ALLOW_VAR`] was read and is invalid, or when the client cannot
    /// be built.
    pub fn build(self) -> Result<Endpoint, Error> {
        let id = ProviderId::new(self.id.as_deref().unwrap_or(self.default_id))?;
        if let Some(e) = self.network_env_error {
            return Err(Error::Config(format!("provider {id}: {e}")));
        }
        let base = match self.base_url.as_deref().or(self.default_base_url) {
            Some(s) => base_url(s)?,
            None => {
                return Err(Error::Config(format!(
                    "provider {id}: no base URL: call with_base_url or set {}",
                    self.base_url_vars.join(" or ")
                )));
            }
        };
        let (client, guard) = match self.client {
            Some(c) => (c, Guard::unguarded_client(self.network, Some(&base))),
            None => {
                let guard = Guard::guarded(self.network, &base);
                (guarded_client(&self.timeouts, &guard)?, guard)
            }
        };
        Ok(Endpoint {
            id,
            base,
            client,
            timeouts: self.timeouts,
            guard,
        })
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id.as_deref().unwrap_or(self.default_id))
            .field(
                "base_url",
                &self
                    .base_url
                    .as_deref()
                    .or(self.default_base_url)
                    .map(shown_url),
            )
            .field("shared_client", &self.client.is_some())
            .field("timeouts", &self.timeouts)
            .field("network", &self.network)
            .finish()
    }
}

/// A provider's checked id, base URL, client, timeouts and network guard, built by
/// [`ClientConfig::build`]. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Endpoint {
    id: ProviderId,
    base: Url,
    client: reqwest::Client,
    timeouts: Timeouts,
    guard: Guard,
}

impl Endpoint {
    /// The provider id.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The API base URL (http(s), no credentials, query or fragment).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The base URL with `segments` appended, each percent-encoded ([`join`](super::join)).
    pub fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        join(&self.base, segments)
    }

    /// An API call to `segments` with the request timeout (and no credentials: add them).
    pub fn request(
        &self,
        method: reqwest::Method,
        segments: &[&str],
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(self
            .client
            .request(method, self.url(segments)?)
            .timeout(self.timeouts.request))
    }

    /// [`request`](Self::request) with `key` as a bearer token (`Authorization: Bearer <key>`).
    pub fn bearer_request(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        key: &ApiKey,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(self.request(method, segments)?.bearer_auth(key.expose()))
    }

    /// A job this provider just accepted, submitted now at this base URL.
    pub fn job(
        &self,
        vendor_job_id: impl Into<String>,
        vendor_model: impl Into<String>,
        extra: Value,
    ) -> ProviderJob {
        ProviderJob::new(
            self.id.clone(),
            vendor_job_id,
            vendor_model,
            OffsetDateTime::now_utc(),
        )
        .with_base_url(self.base.to_string())
        .with_extra(extra)
    }

    /// The job a callback naming vendor job `id` (of `vendor_model`) speaks of: the attempt's
    /// recorded job, under the callback's id (`recorded_job`); without one, a job of this
    /// provider with that id, dated at the attempt's submit.
    pub fn callback_job(&self, id: &str, vendor_model: &str, ctx: &CallbackContext) -> ProviderJob {
        recorded_job(id, ctx).unwrap_or_else(|| {
            self.job(id, vendor_model, Value::Null)
                .with_submitted_at(ctx.submitted_at)
        })
    }

    /// Streams a video with the download timeout, sending `key` only to the base URL's origin
    /// and reaching only addresses the network policy allows ([`download`](super::download));
    /// a failed answer goes to `classify`.
    pub async fn download(
        &self,
        url: &str,
        key: Option<&ApiKey>,
        classify: impl FnOnce(&Answer) -> ProviderError,
    ) -> Result<ByteStream, ProviderError> {
        download_guarded(
            &self.client,
            &self.guard,
            url,
            key,
            &self.base,
            self.timeouts.download,
            classify,
        )
        .await
    }

    /// [`download`](Self::download) with the usual classification: a failed answer is a
    /// [`download_error`](super::download_error) scrubbed of `secrets`.
    pub async fn download_video(
        &self,
        url: &str,
        key: Option<&ApiKey>,
        secrets: &(impl Scrub + Sync + ?Sized),
    ) -> Result<ByteStream, ProviderError> {
        self.download(url, key, |answer| download_error(answer, url, secrets))
            .await
    }

    /// Loads a reference image within the request timeout ([`load_image`](super::load_image)),
    /// from an address the network policy allows (the base URL's origin gets no exemption).
    pub async fn load_image(&self, image: &ImageRef) -> Result<(Bytes, String), ProviderError> {
        load_image_guarded(
            &self.client,
            &self.guard.without_origin(),
            image,
            self.timeouts.request,
        )
        .await
    }

    /// An image as a JSON body carries it: an `https:` or `data:` URL as is; a path or an
    /// `http:` URL loaded ([`load_image`](Self::load_image)) and inlined as a `data:` URL.
    pub async fn image_url(&self, image: &ImageRef) -> Result<String, ProviderError> {
        use base64::Engine as _;
        match image.kind() {
            ImageKind::Url if image.as_str().starts_with("https://") => {
                Ok(image.as_str().to_owned())
            }
            ImageKind::DataUrl => Ok(image.as_str().to_owned()),
            _ => {
                let (bytes, mime) = self.load_image(image).await?;
                Ok(format!(
                    "data:{mime};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&bytes)
                ))
            }
        }
    }
}

/// The attempt's recorded job as a callback naming vendor job `id` speaks of it: as recorded
/// when the ids match; with the callback's id when they differ, so that the orchestrator sees
/// the other id and refuses the claim; `None` when no job is recorded (the submit is in flight
/// or ambiguous).
pub(crate) fn recorded_job(id: &str, ctx: &CallbackContext) -> Option<ProviderJob> {
    let mut job = ctx.job.clone()?;
    if job.vendor_job_id != id {
        id.clone_into(&mut job.vendor_job_id);
    }
    Some(job)
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("base_url", &self.base.as_str())
            .field("timeouts", &self.timeouts)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: &[&str] = &["CINEFLOW_TEST_BUILDER_BASE_URL"];

    #[test]
    fn defaults_apply_and_are_checked() {
        let e = ClientConfig::new("demo", Some("https://api.example/v1/"), VARS)
            .build()
            .unwrap();
        assert_eq!(e.id().as_str(), "demo");
        assert_eq!(e.base().as_str(), "https://api.example/v1");
        let job = e.job("j-1", "m", Value::Null);
        assert_eq!(job.base_url.as_deref(), Some("https://api.example/v1"));
        assert_eq!(&job.provider, e.id());
        let mut bad = ClientConfig::new("demo", None, VARS);
        let msg = bad.clone().build().unwrap_err().to_string();
        assert!(msg.contains("CINEFLOW_TEST_BUILDER_BASE_URL"), "{msg}");
        bad.id = Some("Not A Slug".into());
        bad.base_url = Some("https://api.example".into());
        assert!(bad.build().is_err());
    }

    #[test]
    fn debug_hides_credentials_in_the_base_url() {
        let mut c = ClientConfig::new("demo", None, VARS);
        c.base_url = Some("https://user:hunter2@proxy.example/v1?token=abc".into());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("abc"), "{dbg}");
        assert!(dbg.contains("proxy.example"), "{dbg}");
    }

    #[test]
    fn a_callback_keeps_its_own_id_and_is_dated_at_the_submit() {
        use cineflow_core::TaskId;
        use cineflow_core::callback::AttemptRef;
        let e = ClientConfig::new("demo", Some("https://api.example/v1"), VARS)
            .build()
            .unwrap();
        let submitted = OffsetDateTime::UNIX_EPOCH;
        let ctx = CallbackContext::new(AttemptRef::new(TaskId::new(), 1), "m-1", submitted);
        let fresh = e.callback_job("j-2", "m-1", &ctx);
        assert_eq!(fresh.vendor_job_id, "j-2");
        assert_eq!(fresh.vendor_model, "m-1");
        assert_eq!(fresh.submitted_at, submitted);
        assert_eq!(&fresh.provider, e.id());
        let recorded = e.job("j-1", "m-1", serde_json::json!({ "route": "r" }));
        let ctx = ctx.with_job(recorded.clone());
        assert_eq!(e.callback_job("j-1", "m-1", &ctx), recorded);
        let other = e.callback_job("j-2", "m-1", &ctx);
        assert_eq!(other.vendor_job_id, "j-2");
        assert_eq!(other.submitted_at, recorded.submitted_at);
        assert_eq!(other.extra, recorded.extra);
    }

    #[test]
    fn keys_are_required_and_header_safe() {
        let id = ProviderId::new("demo").unwrap();
        let e = require_key(None, &id, &["A_KEY", "B_KEY"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("A_KEY or B_KEY"), "{e}");
        assert!(require_key(Some(ApiKey::new("  ")), &id, &[]).is_err());
        assert!(require_key(Some(ApiKey::new("bad\nkey")), &id, &[]).is_err());
        assert!(require_key(Some(ApiKey::new("sk-1")), &id, &[]).is_ok());
    }
}
