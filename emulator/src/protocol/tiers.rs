//! Access tiers: the names Azure accepts, which blob type takes which, and the state of a
//! blob's tier over time (an archived blob's rehydration completes on the clock, as leases
//! expire on it: derived when read, so moving the admin clock completes it).

use crate::protocol::error::{ErrorCode, Result, StorageError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    Hot,
    Cool,
    Cold,
    Archive,
    P4,
    P6,
    P10,
    P15,
    P20,
    P30,
    P40,
    P50,
    P60,
    P70,
    P80,
}

const ALL: [Tier; 15] = [
    Tier::Hot,
    Tier::Cool,
    Tier::Cold,
    Tier::Archive,
    Tier::P4,
    Tier::P6,
    Tier::P10,
    Tier::P15,
    Tier::P20,
    Tier::P30,
    Tier::P40,
    Tier::P50,
    Tier::P60,
    Tier::P70,
    Tier::P80,
];

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "Hot",
            Tier::Cool => "Cool",
            Tier::Cold => "Cold",
            Tier::Archive => "Archive",
            Tier::P4 => "P4",
            Tier::P6 => "P6",
            Tier::P10 => "P10",
            Tier::P15 => "P15",
            Tier::P20 => "P20",
            Tier::P30 => "P30",
            Tier::P40 => "P40",
            Tier::P50 => "P50",
            Tier::P60 => "P60",
            Tier::P70 => "P70",
            Tier::P80 => "P80",
        }
    }

    /// Azure reads tier names case-insensitively.
    pub fn parse(v: &str) -> Option<Tier> {
        ALL.into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(v.trim()))
    }

    /// Hot, Cool, Cold and Archive are block blob tiers; P4-P80 are premium page blob tiers.
    pub fn is_block_tier(self) -> bool {
        matches!(self, Tier::Hot | Tier::Cool | Tier::Cold | Tier::Archive)
    }
}

/// `x-ms-access-tier` of a request, parsed (400 `InvalidHeaderValue` for a name Azure does
/// not know).
pub fn parse_header(v: &str) -> Result<Tier> {
    Tier::parse(v).ok_or_else(|| StorageError::invalid_header("x-ms-access-tier", v))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Priority {
    Standard,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Standard => "Standard",
            Priority::High => "High",
        }
    }

    pub fn parse(v: &str) -> Result<Priority> {
        match v.trim() {
            s if s.eq_ignore_ascii_case("standard") => Ok(Priority::Standard),
            s if s.eq_ignore_ascii_case("high") => Ok(Priority::High),
            _ => Err(StorageError::invalid_header("x-ms-rehydrate-priority", v)),
        }
    }
}

/// An archived blob on its way back online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehydration {
    pub to: Tier,
    pub priority: Priority,
    /// When it completes, on the emulator's clock.
    pub done_ms: i64,
}

/// A blob's tier as stored: unset (inferred from the account default, Hot), or set at a
/// time, possibly with a rehydration under way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierState {
    pub tier: Option<Tier>,
    pub changed_ms: Option<i64>,
    pub rehydration: Option<Rehydration>,
}

impl TierState {
    /// The state at `now`: a rehydration whose time has come is complete.
    pub fn at(self, now_ms: i64) -> TierState {
        match self.rehydration {
            Some(r) if r.done_ms <= now_ms => TierState {
                tier: Some(r.to),
                changed_ms: Some(r.done_ms),
                rehydration: None,
            },
            _ => self,
        }
    }

    /// The tier reported (Hot when inferred).
    pub fn effective(self, now_ms: i64) -> Tier {
        self.at(now_ms).tier.unwrap_or(Tier::Hot)
    }

    /// Archived (or still rehydrating): its bytes are offline.
    pub fn is_offline(self, now_ms: i64) -> bool {
        self.effective(now_ms) == Tier::Archive
    }

    /// `x-ms-archive-status` while a rehydration is pending.
    pub fn archive_status(self, now_ms: i64) -> Option<String> {
        self.at(now_ms).rehydration.map(|r| {
            format!(
                "rehydrate-pending-to-{}",
                r.to.as_str().to_ascii_lowercase()
            )
        })
    }

    pub fn rehydrate_priority(self, now_ms: i64) -> Option<Priority> {
        self.at(now_ms).rehydration.map(|r| r.priority)
    }
}

/// The answer to an archived blob's data being asked for.
pub fn archived() -> StorageError {
    StorageError::new(ErrorCode::BlobArchived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rehydration() {
        assert_eq!(Tier::parse("cool"), Some(Tier::Cool));
        assert_eq!(Tier::parse("p30"), Some(Tier::P30));
        assert_eq!(Tier::parse("Warm"), None);
        assert!(Tier::Archive.is_block_tier() && !Tier::P4.is_block_tier());
        let pending = TierState {
            tier: Some(Tier::Archive),
            changed_ms: Some(1),
            rehydration: Some(Rehydration {
                to: Tier::Hot,
                priority: Priority::High,
                done_ms: 100,
            }),
        };
        assert!(pending.is_offline(99));
        assert_eq!(
            pending.archive_status(99).as_deref(),
            Some("rehydrate-pending-to-hot")
        );
        assert!(!pending.is_offline(100));
        assert_eq!(pending.effective(100), Tier::Hot);
        assert_eq!(pending.at(100).changed_ms, Some(100));
        assert_eq!(TierState::default().effective(0), Tier::Hot);
    }
}
