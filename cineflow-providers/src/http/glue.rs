//! The `VideoProvider` methods that only forward to an adapter's fields, written once for every
//! adapter: each macro is invoked inside the adapter's `#[async_trait] impl VideoProvider`.
//!
//! `#[async_trait]` does not see what a macro inside the impl writes, so the `async` methods
//! here are written the way that attribute writes an `async fn`: a boxed `Send` future
//! ([`BoxFuture`](futures::future::BoxFuture)) with one lifetime per reference.

// A build without some adapters leaves some of these unused.
#![allow(unused_macros)]

/// Writes `fn id` (the id of the [`Endpoint`](super::Endpoint) at `self.$api`) and
/// `fn capabilities` (the table at `self.$caps`), e.g.
/// `http::id_and_capabilities!(inner.api, inner.caps);`.
macro_rules! id_and_capabilities {
    ($($api:ident).+, $($caps:ident).+) => {
        fn id(&self) -> &cineflow_core::ProviderId {
            self.$($api).+.id()
        }

        fn capabilities(&self) -> &cineflow_core::provider::Capabilities {
            &self.$($caps).+
        }
    };
}
pub(crate) use id_and_capabilities;

/// Writes `fn download` for result URLs that need no credentials (pre-signed or public): the
/// asset is streamed through the [`Endpoint`](super::Endpoint) at `self.$api` with no key ever
/// sent, the secrets at `self.$secrets` scrubbed from its errors, e.g.
/// `http::download_without_credentials!(inner.api, inner.key);`.
macro_rules! download_without_credentials {
    ($($api:ident).+, $($secrets:ident).+) => {
        fn download<'life0, 'life1, 'life2, 'async_trait>(
            &'life0 self,
            _job: &'life1 cineflow_core::provider::ProviderJob,
            asset: &'life2 cineflow_core::provider::VideoAsset,
        ) -> futures::future::BoxFuture<
            'async_trait,
            Result<cineflow_core::provider::ByteStream, cineflow_core::provider::ProviderError>,
        >
        where
            'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, Self: 'async_trait,
        {
            Box::pin(
                self.$($api).+
                    .download_video(&asset.url, None, &self.$($secrets).+),
            )
        }
    };
}
pub(crate) use download_without_credentials;

/// Writes `fn callback_scheme` (`callbacks!(Token)`: the vendor signs nothing, the
/// per-attempt token in the callback URL authenticates a callback; `callbacks!(Signed)`: the
/// vendor signs its callbacks) and `fn read_callback`, which hands the request to the
/// adapter's own `async fn callback_claim(req, ctx)`.
macro_rules! callbacks {
    ($scheme:ident) => {
        fn callback_scheme(&self) -> cineflow_core::callback::CallbackScheme {
            cineflow_core::callback::CallbackScheme::$scheme
        }

        fn read_callback<'life0, 'life1, 'life2, 'async_trait>(
            &'life0 self,
            req: &'life1 cineflow_core::callback::CallbackRequest,
            ctx: &'life2 cineflow_core::callback::CallbackContext,
        ) -> futures::future::BoxFuture<
            'async_trait,
            Result<
                cineflow_core::callback::CallbackClaim,
                cineflow_core::callback::CallbackRejection,
            >,
        >
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            'life2: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(self.callback_claim(req, ctx))
        }
    };
}
pub(crate) use callbacks;
