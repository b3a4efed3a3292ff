//! Editing one route in the live router.

use super::{RouteConfig, Router};
use crate::error::{Error, Result};
use crate::ids::{ModelId, ProviderId};

impl Router {
    /// Replaces the vendor models (tried in order) of `model`'s route through `provider` at
    /// runtime; the next attempt that picks the route uses them, attempts in flight finish on
    /// theirs.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`route`) if `model` has no route through `provider`;
    /// [`Error::InvalidInput`] (`vendor_models`) for an empty list, a blank or padded name, or
    /// a name listed twice. Nothing changes on error.
    pub fn set_route_vendor_models(
        &self,
        model: &ModelId,
        provider: &ProviderId,
        vendor_models: Vec<String>,
    ) -> Result<()> {
        check_vendor_models(&vendor_models)?;
        self.edit_route(model, provider, |route| route.vendor_models = vendor_models)
    }

    /// Applies `edit` to `model`'s route through `provider` in the live configuration.
    ///
    /// # Errors
    /// [`Error::NotFound`] (`route`) if `model` has no route through `provider`; then nothing
    /// changes.
    pub(super) fn edit_route(
        &self,
        model: &ModelId,
        provider: &ProviderId,
        edit: impl FnOnce(&mut RouteConfig),
    ) -> Result<()> {
        let mut cfg = self.write();
        let route = cfg
            .models
            .get_mut(model)
            .and_then(|m| m.routes.iter_mut().find(|r| &r.provider == provider))
            .ok_or_else(|| Error::not_found("route", format!("{model}/{provider}")))?;
        edit(route);
        Ok(())
    }
}

/// A route's vendor model list: at least one name, each non-blank without surrounding spaces,
/// none twice.
fn check_vendor_models(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(Error::invalid_input(
            "vendor_models",
            "at least one vendor model is needed",
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() || name.trim() != name {
            return Err(Error::invalid_input(
                format!("vendor_models[{i}]"),
                format!("{name:?} is not a vendor model name (blank or padded with spaces)"),
            ));
        }
        if names[..i].contains(name) {
            return Err(Error::invalid_input(
                format!("vendor_models[{i}]"),
                format!("{name:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::router::RouterConfig;

    /// A router whose model `m` has one route, through `mock`, on vendor model `v1`.
    fn router() -> (Router, ModelId, ProviderId) {
        let cfg = RouterConfig::from_json(
            r#"{"models": {"m": {"routes": [{"provider": "mock", "vendor_models": ["v1"]}]}}}"#,
        )
        .unwrap();
        let (model, provider) = (ModelId::new("m").unwrap(), ProviderId::new("mock").unwrap());
        (Router::from_config(cfg), model, provider)
    }

    #[cfg(feature = "testing")]
    fn picked_vendor_model(router: &Router, model: &ModelId) -> String {
        use crate::ids::TaskId;
        use crate::provider::GenerationRequest;
        use crate::router::Selection;
        let req = GenerationRequest::new(TaskId::new(), "", "A cat.", 5);
        match router.select(model, &req, &[], None) {
            Selection::Picked(p) => p.vendor_model,
            _ => panic!("no pick"),
        }
    }

    #[cfg(feature = "testing")]
    #[test]
    fn new_vendor_models_serve_the_next_pick_in_their_order() {
        let (router, model, provider) = router();
        let router = router.provider(std::sync::Arc::new(
            crate::mock::MockProvider::new("mock").unwrap(),
        ));
        assert_eq!(picked_vendor_model(&router, &model), "v1");
        router
            .set_route_vendor_models(&model, &provider, vec!["v2".into(), "v1".into()])
            .unwrap();
        assert_eq!(picked_vendor_model(&router, &model), "v2");
        assert_eq!(
            router.config().models[&model].routes[0].vendor_models,
            ["v2", "v1"]
        );
    }

    #[test]
    fn an_unknown_model_or_a_provider_off_the_route_is_not_found_and_changes_nothing() {
        let (router, model, provider) = router();
        let other = ProviderId::new("other").unwrap();
        let e = router
            .set_route_vendor_models(&model, &other, vec!["x".into()])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = router
            .set_route_vendor_models(&ModelId::new("nope").unwrap(), &provider, vec!["x".into()])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            router.config().models[&model].routes[0].vendor_models,
            ["v1"]
        );
    }

    #[test]
    fn empty_blank_padded_or_repeated_names_are_refused_naming_the_entry() {
        let (router, model, provider) = router();
        for (names, field) in [
            (vec![], "vendor_models"),
            (vec!["v2".to_owned(), " ".to_owned()], "vendor_models[1]"),
            (vec![" v2".to_owned()], "vendor_models[0]"),
            (vec!["v2".to_owned(), "v2".to_owned()], "vendor_models[1]"),
        ] {
            let e = router
                .set_route_vendor_models(&model, &provider, names)
                .unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field: f, .. } if f == field),
                "{e}"
            );
        }
        assert_eq!(
            router.config().models[&model].routes[0].vendor_models,
            ["v1"]
        );
    }
}
