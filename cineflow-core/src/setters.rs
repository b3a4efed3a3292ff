//! `with_*` setters for the public fields of `#[non_exhaustive]` structs.
//!
//! Those structs cannot be built with a struct literal from another crate; users start from a
//! constructor or `Default` and chain `with_*` setters, the one builder style of this crate.

/// Writes `pub fn $setter(mut self, value: $ty) -> Self` for each `$setter => $field: $ty`,
/// documented as setting that field. `$setter => $field?: $ty` takes the inner value of an
/// `Option` field and stores it as `Some`.
macro_rules! with_setters {
    () => {};
    ($setter:ident => $field:ident: $ty:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
        #[must_use]
        pub fn $setter(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
        $(crate::setters::with_setters!($($rest)*);)?
    };
    ($setter:ident => $field:ident?: $ty:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
        #[must_use]
        pub fn $setter(mut self, $field: $ty) -> Self {
            self.$field = Some($field.into());
            self
        }
        $(crate::setters::with_setters!($($rest)*);)?
    };
}

pub(crate) use with_setters;
