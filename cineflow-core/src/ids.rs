//! Typed identifiers.
//!
//! Entity ids ([`StoryboardId`], [`SegmentId`], [`RunId`], [`TaskId`]) are UUIDs rendered as
//! 32 lowercase hex characters, the format CineFlow uses on its API and in file names. They parse
//! from that form and from the hyphenated UUID form. Because they are validated, they are safe to
//! use in file paths.
//!
//! [`ProviderId`] and [`ModelId`] are slugs: 1 to 64 characters of `[a-z0-9_.-]`, starting with a
//! letter or digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.simple(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s, $kind).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0.simple())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn parse_uuid(s: &str, kind: &'static str) -> Result<Uuid, Error> {
    let ok_len = s.len() == 32 || s.len() == 36;
    match Uuid::try_parse(s) {
        Ok(uuid) if ok_len => Ok(uuid),
        _ => Err(Error::InvalidId {
            kind,
            value: truncate_for_error(s),
            reason: "expected 32 hex characters".into(),
        }),
    }
}

pub(crate) fn truncate_for_error(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

uuid_id!(
    /// Identifies a [`Storyboard`](crate::Storyboard).
    StoryboardId,
    "storyboard id"
);
uuid_id!(
    /// Identifies a [`Segment`](crate::Segment).
    SegmentId,
    "segment id"
);
uuid_id!(
    /// Identifies a [`Run`](crate::Run).
    RunId,
    "run id"
);
uuid_id!(
    /// Identifies a [`Task`](crate::Task).
    TaskId,
    "task id"
);

macro_rules! slug_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a slug (`[a-z0-9][a-z0-9_.-]{0,63}`).
            pub fn new(s: impl Into<String>) -> Result<Self, Error> {
                let s = s.into();
                validate_slug(&s, $kind)?;
                Ok(Self(s))
            }

            /// The slug as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn validate_slug(s: &str, kind: &'static str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidId {
        kind,
        value: truncate_for_error(s),
        reason: reason.into(),
    };
    if s.is_empty() || s.len() > 64 {
        return Err(bad("must be 1 to 64 characters"));
    }
    let mut chars = s.chars();
    if !chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Err(bad("must start with a lowercase letter or digit"));
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(bad("may contain only a-z, 0-9, '_', '.' and '-'"));
    }
    Ok(())
}

slug_id!(
    /// Identifies a configured [`VideoProvider`](crate::VideoProvider), e.g. `sora_hk`.
    ProviderId,
    "provider id"
);
slug_id!(
    /// A logical model name that routes to vendor models, e.g. `sora2` or `sora2pro`.
    ModelId,
    "model id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_render_as_32_lowercase_hex_characters() {
        let id = TaskId::new();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(s.parse::<TaskId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
    }

    #[test]
    fn entity_ids_accept_the_hyphenated_form_and_reject_garbage() {
        let id: RunId = "4b1605d8-e1aa-48ab-8249-f79fd0c4fdcf".parse().unwrap();
        assert_eq!(id.to_string(), "4b1605d8e1aa48ab8249f79fd0c4fdcf");
        assert!("../etc/passwd".parse::<RunId>().is_err());
        assert!(
            "{4b1605d8e1aa48ab8249f79fd0c4fdcf}"
                .parse::<RunId>()
                .is_err()
        );
        assert!(serde_json::from_str::<RunId>("\"nope\"").is_err());
    }

    #[test]
    fn slugs_are_validated() {
        assert!(ProviderId::new("sora_hk").is_ok());
        assert!(ModelId::new("sora2pro").is_ok());
        assert!(ModelId::new("sora-2-pro-2025-10-06").is_ok());
        for bad in ["", "Sora", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(ProviderId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
