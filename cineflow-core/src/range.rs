//! Segment selection: `all`, or a comma list of indexes and inclusive ranges (`1-3,5`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Which segments of a storyboard a run covers.
///
/// Unlike CineFlow, which silently drops parts it cannot read, parsing reports every bad part.
///
/// ```
/// use cineflow_core::SegmentRange;
/// let r: SegmentRange = "1-3, 5".parse()?;
/// assert!(r.contains(2) && r.contains(5) && !r.contains(4));
/// let err = "1-3,x,7-5".parse::<SegmentRange>().unwrap_err();
/// assert!(err.to_string().contains("x") && err.to_string().contains("7-5"));
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SegmentRange {
    /// Every segment.
    #[default]
    All,
    /// Exactly these 1-based indexes.
    Only(BTreeSet<u32>),
}

/// The largest span one `a-b` part may cover (guards against `1-4000000000`).
const MAX_SPAN: u32 = 100_000;

impl SegmentRange {
    /// Whether the segment with this 1-based index is selected.
    pub fn contains(&self, index: u32) -> bool {
        match self {
            SegmentRange::All => true,
            SegmentRange::Only(set) => set.contains(&index),
        }
    }

    /// Parses `all` (or an empty string) or `1-3,5`.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("all") {
            return Ok(SegmentRange::All);
        }
        let mut set = BTreeSet::new();
        let mut bad = Vec::new();
        for raw in trimmed.split(',') {
            let part = raw.trim();
            match parse_part(part) {
                Some((a, b)) => set.extend(a..=b),
                None => bad.push(if part.is_empty() {
                    "(empty)".to_owned()
                } else {
                    part.to_owned()
                }),
            }
        }
        if bad.is_empty() {
            Ok(SegmentRange::Only(set))
        } else {
            Err(Error::InvalidRange {
                input: crate::ids::truncate_for_error(input),
                bad_parts: bad,
            })
        }
    }
}

fn parse_index(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n >= 1)
}

fn parse_part(part: &str) -> Option<(u32, u32)> {
    match part.split_once('-') {
        None => parse_index(part).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (parse_index(a)?, parse_index(b)?);
            (a <= b && b - a < MAX_SPAN).then_some((a, b))
        }
    }
}

impl FromStr for SegmentRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for SegmentRange {
    /// Renders canonically: `all`, or merged ranges such as `1-3,5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = match self {
            SegmentRange::All => return f.write_str("all"),
            SegmentRange::Only(set) => set,
        };
        let mut first = true;
        let mut iter = set.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for SegmentRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SegmentRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(v: &[u32]) -> SegmentRange {
        SegmentRange::Only(v.iter().copied().collect())
    }

    #[test]
    fn all_and_empty_select_every_segment() {
        assert_eq!(SegmentRange::parse("all").unwrap(), SegmentRange::All);
        assert_eq!(SegmentRange::parse(" ALL ").unwrap(), SegmentRange::All);
        assert_eq!(SegmentRange::parse("").unwrap(), SegmentRange::All);
    }

    #[test]
    fn lists_and_inclusive_ranges_are_merged() {
        assert_eq!(SegmentRange::parse("1-3,5").unwrap(), only(&[1, 2, 3, 5]));
        assert_eq!(
            SegmentRange::parse(" 5 , 2-3 ,3").unwrap(),
            only(&[2, 3, 5])
        );
        assert_eq!(SegmentRange::parse("4-4").unwrap(), only(&[4]));
    }

    #[test]
    fn every_bad_part_is_reported_instead_of_dropped() {
        let err = SegmentRange::parse("1,x,3-1,0,,2-,-4,7").unwrap_err();
        match err {
            Error::InvalidRange { bad_parts, .. } => {
                assert_eq!(bad_parts, ["x", "3-1", "0", "(empty)", "2-", "-4"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(SegmentRange::parse("1-4000000000").is_err());
        assert!(SegmentRange::parse("+1").is_err());
    }

    #[test]
    fn ranges_render_canonically_and_round_trip_through_serde() {
        let r = SegmentRange::parse("5,1,2,3,9-10").unwrap();
        assert_eq!(r.to_string(), "1-3,5,9-10");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<SegmentRange>(&json).unwrap(), r);
        assert_eq!(
            serde_json::to_string(&SegmentRange::All).unwrap(),
            "\"all\""
        );
    }
}
