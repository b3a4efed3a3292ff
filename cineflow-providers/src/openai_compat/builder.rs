//! [`OpenAiCompatBuilder`] and the [`Preset`]s it starts from.

use cineflow_core::provider::Capabilities;
use cineflow_core::{Durations, Error, ModelCapabilities};
use time::Date;

use super::{
    AIHUBMIX_BASE_URL, APIYI_BASE_URL, DEFAULT_DURATIONS, OPENAI_BASE_URL, OPENAI_SORA_SUNSET,
    OpenAiCompat,
};
use crate::http::{self, ApiKey, ClientConfig, WarnOnce};

/// A known deployment of the protocol: its default id, base URL, environment variables and
/// sunset date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// OpenAI itself (sunset on [`OPENAI_SORA_SUNSET`]).
    OpenAi,
    /// AIHubMix.
    AiHubMix,
    /// apiyi.
    ApiYi,
    /// Any other deployment (NewAPI-style resellers): the base URL must be given.
    Custom,
}

impl Preset {
    /// The default provider id: `openai`, `aihubmix`, `apiyi` or `openai_compat`.
    pub const fn id(self) -> &'static str {
        match self {
            Preset::OpenAi => "openai",
            Preset::AiHubMix => "aihubmix",
            Preset::ApiYi => "apiyi",
            Preset::Custom => "openai_compat",
        }
    }

    /// The default base URL (`None` for [`Custom`](Preset::Custom)).
    pub const fn base_url(self) -> Option<&'static str> {
        match self {
            Preset::OpenAi => Some(OPENAI_BASE_URL),
            Preset::AiHubMix => Some(AIHUBMIX_BASE_URL),
            Preset::ApiYi => Some(APIYI_BASE_URL),
            Preset::Custom => None,
        }
    }

    /// The day the deployment stopped serving, if it did.
    pub const fn sunset(self) -> Option<Date> {
        match self {
            Preset::OpenAi => Some(OPENAI_SORA_SUNSET),
            _ => None,
        }
    }

    /// Environment variables holding the API key, in order of preference (cineflow's name,
    /// then CineFlow's).
    pub const fn api_key_vars(self) -> &'static [&'static str] {
        match self {
            Preset::OpenAi => &["CINEFLOW_OPENAI_API_KEY", "OPENAI_API_KEY"],
            Preset::AiHubMix => &["CINEFLOW_AIHUBMIX_API_KEY", "AIHUBMIX_API_KEY"],
            Preset::ApiYi => &["CINEFLOW_APIYI_API_KEY", "APIYI_API_KEY"],
            Preset::Custom => &["CINEFLOW_OPENAI_COMPAT_API_KEY"],
        }
    }

    /// Environment variables holding a base URL override, in order of preference.
    pub const fn base_url_vars(self) -> &'static [&'static str] {
        match self {
            Preset::OpenAi => &["CINEFLOW_OPENAI_BASE_URL", "OPENAI_BASE_URL"],
            Preset::AiHubMix => &["CINEFLOW_AIHUBMIX_BASE_URL", "AIHUBMIX_BASE_URL"],
            Preset::ApiYi => &["CINEFLOW_APIYI_BASE_URL", "APIYI_BASE_URL"],
            Preset::Custom => &["CINEFLOW_OPENAI_COMPAT_BASE_URL"],
        }
    }
}

/// Configures an [`OpenAiCompat`] provider. Start from a preset ([`OpenAiCompat::openai`],
/// [`aihubmix`](OpenAiCompat::aihubmix), [`apiyi`](OpenAiCompat::apiyi),
/// [`custom`](OpenAiCompat::custom)), or [`new`](Self::new) / [`from_env`](Self::from_env) for a
/// custom deployment.
#[derive(Debug, Clone)]
pub struct OpenAiCompatBuilder {
    preset: Preset,
    http: ClientConfig,
    api_key: Option<ApiKey>,
    durations: Option<Vec<u32>>,
    models: Vec<String>,
    sunset: Option<Option<Date>>,
    today: Option<Date>,
}

http::http_builder!(OpenAiCompatBuilder, api_key);

impl OpenAiCompatBuilder {
    /// A builder for a [`Custom`](Preset::Custom) deployment: set the base URL and key.
    pub fn new() -> Self {
        Self::preset(Preset::Custom)
    }

    /// A builder with a preset's defaults (base URL, id, sunset). Reads no environment: see
    /// [`load_env`](Self::load_env).
    pub fn preset(preset: Preset) -> Self {
        Self {
            preset,
            http: ClientConfig::new(preset.id(), preset.base_url(), preset.base_url_vars()),
            api_key: None,
            durations: None,
            models: Vec::new(),
            sunset: None,
            today: None,
        }
    }

    /// A [`Custom`](Preset::Custom) builder reading `CINEFLOW_OPENAI_COMPAT_API_KEY` and
    /// `CINEFLOW_OPENAI_COMPAT_BASE_URL`.
    pub fn from_env() -> Self {
        Self::new().load_env()
    }

    /// Reads the preset's key and base URL variables ([`Preset::api_key_vars`],
    /// [`Preset::base_url_vars`]); the first non-empty one of each wins and replaces an earlier
    /// setting. Variables that are not set change nothing.
    pub fn load_env(self) -> Self {
        let vars = self.preset.api_key_vars();
        self.with_env_key(vars)
    }

    /// Sets the accepted durations in seconds (e.g. add 16 and 20 where the deployment serves
    /// them). Default: [`DEFAULT_DURATIONS`].
    pub fn with_durations(mut self, durations: impl IntoIterator<Item = u32>) -> Self {
        self.durations = Some(durations.into_iter().collect());
        self
    }

    /// Restricts the vendor models served (advertised in [`Capabilities::models`] and checked
    /// before sending). Default: any model name (resellers add models all the time).
    pub fn with_models(mut self, models: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides the sunset date; `None` removes it. Default: [`OPENAI_SORA_SUNSET`] for the
    /// `openai` preset and for any base URL on `api.openai.com`, none otherwise.
    pub fn with_sunset(mut self, sunset: Option<Date>) -> Self {
        self.sunset = Some(sunset);
        self
    }

    /// Pretends today is `today` (UTC) when checking the sunset, for tests. Default: the
    /// system clock.
    pub fn with_today(mut self, today: Date) -> Self {
        self.today = Some(today);
        self
    }

    /// Validates the configuration and builds the provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a [`Custom`](Preset::Custom) builder has no base URL or no duration
    /// is allowed, and [those every builder has](crate::HttpBuilder#errors-of-build) (key, base
    /// URL, id, client).
    pub fn build(self) -> Result<OpenAiCompat, Error> {
        let api = self.http.build()?;
        let key = http::require_key(self.api_key, api.id(), self.preset.api_key_vars())?;
        let durations = self.durations.unwrap_or_else(|| DEFAULT_DURATIONS.to_vec());
        if durations.is_empty() {
            return Err(Error::Config(format!(
                "provider {}: at least one duration must be allowed",
                api.id()
            )));
        }
        let sunset = match self.sunset {
            Some(explicit) => explicit,
            None => self.preset.sunset().or_else(|| {
                (api.base().host_str() == Some("api.openai.com")).then_some(OPENAI_SORA_SUNSET)
            }),
        };
        // Every model takes the configured durations, 16:9 or 9:16 at 720p or 1080p (`size`),
        // the pro size and a first frame (`input_reference`); nothing else optional is sent.
        let model = |id: &str| {
            ModelCapabilities::new(id)
                .with_durations(Durations::set(durations.clone()))
                .with_pro(true)
                .with_aspect_ratios(http::ORIENTATION_RATIOS.to_vec())
                .with_resolutions(super::RESOLUTIONS.to_vec())
                .with_first_frame(true)
        };
        let capabilities = if self.models.is_empty() {
            Capabilities::of_models([model(ModelCapabilities::ANY)])
        } else {
            Capabilities::of_models(self.models.iter().map(|m| model(m)))
        };
        Ok(OpenAiCompat {
            api,
            preset: self.preset,
            key,
            capabilities,
            sunset,
            today: self.today,
            warned: WarnOnce::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiKeyBuilder, HttpBuilder};
    use cineflow_core::VideoProvider;

    #[test]
    fn presets_carry_their_defaults() {
        let p = OpenAiCompat::openai()
            .with_api_key("k-1234")
            .build()
            .unwrap();
        assert_eq!(p.id(), "openai");
        assert_eq!(p.sunset(), Some(OPENAI_SORA_SUNSET));
        assert_eq!(p.base_url().as_str(), "https://api.openai.com/v1");
        let p = OpenAiCompat::aihubmix()
            .with_api_key("k-1234")
            .build()
            .unwrap();
        assert_eq!(p.id(), "aihubmix");
        assert_eq!(p.sunset(), None);
        let p = OpenAiCompat::apiyi()
            .with_api_key("k-1234")
            .build()
            .unwrap();
        assert_eq!(p.base_url().as_str(), "https://api.apiyi.com/v1");
        let p = OpenAiCompat::custom("https://api.openai.com/v1/")
            .with_api_key("k-1234")
            .build()
            .unwrap();
        assert_eq!(
            p.sunset(),
            Some(OPENAI_SORA_SUNSET),
            "OpenAI's host carries the sunset"
        );
        let p = OpenAiCompat::openai()
            .with_api_key("k-1234")
            .with_sunset(None)
            .build()
            .unwrap();
        assert_eq!(p.sunset(), None);
    }

    #[test]
    fn build_explains_what_is_missing() {
        let e = OpenAiCompat::openai().build().unwrap_err().to_string();
        assert!(
            e.contains("CINEFLOW_OPENAI_API_KEY") && e.contains("OPENAI_API_KEY"),
            "{e}"
        );
        let e = OpenAiCompatBuilder::new()
            .with_api_key("k")
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("CINEFLOW_OPENAI_COMPAT_BASE_URL"), "{e}");
        let e = OpenAiCompat::custom("https://user:pw@example.com/v1")
            .with_api_key("k")
            .build()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw"), "{e}");
        assert!(
            OpenAiCompat::custom("https://example.com/v1?x=1")
                .with_api_key("k")
                .build()
                .is_err()
        );
        assert!(
            OpenAiCompat::aihubmix()
                .with_api_key("bad\nkey")
                .build()
                .is_err()
        );
        assert!(
            OpenAiCompat::aihubmix()
                .with_api_key("k")
                .with_id("Bad Id")
                .build()
                .is_err()
        );
        assert!(
            OpenAiCompat::aihubmix()
                .with_api_key("k")
                .with_durations([])
                .build()
                .is_err()
        );
    }
}
