//! The lease state machine shared by blobs and containers (pure: no I/O, time passed in).

use crate::protocol::error::{ErrorCode, Result, StorageError};
use http::StatusCode;
use serde::{Deserialize, Serialize};

/// What is stored. Expiry and the end of a break are derived from the clock when read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lease {
    #[default]
    Available,
    /// `until_ms` is i64::MAX for an infinite lease.
    Leased {
        id: String,
        duration_s: i64,
        until_ms: i64,
    },
    Breaking {
        id: String,
        until_ms: i64,
    },
    Broken {
        id: String,
    },
}

/// The state as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Available,
    Leased,
    Expired,
    Breaking,
    Broken,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::Leased => "leased",
            State::Expired => "expired",
            State::Breaking => "breaking",
            State::Broken => "broken",
        }
    }
}

/// Which family of codes a data operation's lease errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Blob,
    Container,
}

pub enum Action {
    Acquire {
        duration_s: i64,
        proposed: Option<String>,
    },
    Renew {
        id: String,
    },
    Change {
        id: String,
        proposed: String,
    },
    Release {
        id: String,
    },
    Break {
        period_s: Option<i64>,
    },
}

pub struct Outcome {
    pub status: StatusCode,
    /// `x-ms-lease-id` to return.
    pub id: Option<String>,
    /// `x-ms-lease-time` (break only).
    pub time_s: Option<i64>,
}

fn conflict(code: ErrorCode) -> StorageError {
    StorageError::new(code)
}

impl Lease {
    pub fn state(&self, now_ms: i64) -> State {
        match self {
            Lease::Available => State::Available,
            Lease::Leased { until_ms, .. } if now_ms >= *until_ms => State::Expired,
            Lease::Leased { .. } => State::Leased,
            Lease::Breaking { until_ms, .. } if now_ms >= *until_ms => State::Broken,
            Lease::Breaking { .. } => State::Breaking,
            Lease::Broken { .. } => State::Broken,
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Lease::Available => None,
            Lease::Leased { id, .. } | Lease::Breaking { id, .. } | Lease::Broken { id } => {
                Some(id)
            }
        }
    }

    /// `x-ms-lease-state`, `x-ms-lease-status` and, while leased, `x-ms-lease-duration`.
    pub fn headers(&self, now_ms: i64) -> Vec<(&'static str, &'static str)> {
        let state = self.state(now_ms);
        let locked = matches!(state, State::Leased | State::Breaking);
        let mut h = vec![
            ("x-ms-lease-state", state.as_str()),
            (
                "x-ms-lease-status",
                if locked { "locked" } else { "unlocked" },
            ),
        ];
        if let (State::Leased, Lease::Leased { duration_s, .. }) = (state, self) {
            h.push((
                "x-ms-lease-duration",
                if *duration_s < 0 { "infinite" } else { "fixed" },
            ));
        }
        h
    }

    /// Applies a lease action; returns the new lease and what to answer.
    pub fn apply(&self, action: Action, now_ms: i64) -> Result<(Lease, Outcome)> {
        let state = self.state(now_ms);
        let current = self.id().map(str::to_string);
        let ok = |lease: Lease, status: StatusCode, id: Option<String>| {
            Ok((
                lease,
                Outcome {
                    status,
                    id,
                    time_s: None,
                },
            ))
        };
        match action {
            Action::Acquire {
                duration_s,
                proposed,
            } => {
                let id = proposed.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                match state {
                    State::Leased if current.as_deref() != Some(id.as_str()) => {
                        Err(conflict(ErrorCode::LeaseAlreadyPresent))
                    }
                    State::Breaking if current.as_deref() == Some(id.as_str()) => {
                        Err(conflict(ErrorCode::LeaseIsBreakingAndCannotBeAcquired))
                    }
                    State::Breaking => Err(conflict(ErrorCode::LeaseAlreadyPresent)),
                    _ => ok(
                        leased(id.clone(), duration_s, now_ms),
                        StatusCode::CREATED,
                        Some(id),
                    ),
                }
            }
            Action::Renew { id } => match state {
                State::Available => Err(conflict(ErrorCode::LeaseIdMismatchWithLeaseOperation)),
                _ if current.as_deref() != Some(id.as_str()) => {
                    Err(conflict(ErrorCode::LeaseIdMismatchWithLeaseOperation))
                }
                State::Breaking | State::Broken => {
                    Err(conflict(ErrorCode::LeaseIsBrokenAndCannotBeRenewed))
                }
                State::Leased | State::Expired => {
                    let duration_s = match self {
                        Lease::Leased { duration_s, .. } => *duration_s,
                        _ => -1,
                    };
                    ok(
                        leased(id.clone(), duration_s, now_ms),
                        StatusCode::OK,
                        Some(id),
                    )
                }
            },
            Action::Change { id, proposed } => match state {
                State::Available | State::Broken | State::Expired => {
                    Err(conflict(ErrorCode::LeaseNotPresentWithLeaseOperation))
                }
                State::Breaking => Err(conflict(ErrorCode::LeaseIsBreakingAndCannotBeChanged)),
                State::Leased => {
                    // Idempotent: changing to the id it already has succeeds.
                    if current.as_deref() != Some(id.as_str())
                        && current.as_deref() != Some(proposed.as_str())
                    {
                        return Err(conflict(ErrorCode::LeaseIdMismatchWithLeaseOperation));
                    }
                    let (duration_s, until_ms) = match self {
                        Lease::Leased {
                            duration_s,
                            until_ms,
                            ..
                        } => (*duration_s, *until_ms),
                        _ => (-1, i64::MAX),
                    };
                    ok(
                        Lease::Leased {
                            id: proposed.clone(),
                            duration_s,
                            until_ms,
                        },
                        StatusCode::OK,
                        Some(proposed),
                    )
                }
            },
            Action::Release { id } => match state {
                State::Available => Err(conflict(ErrorCode::LeaseNotPresentWithLeaseOperation)),
                _ if current.as_deref() != Some(id.as_str()) => {
                    Err(conflict(ErrorCode::LeaseIdMismatchWithLeaseOperation))
                }
                _ => ok(Lease::Available, StatusCode::OK, None),
            },
            Action::Break { period_s } => match (state, self) {
                (State::Available | State::Expired, _) => {
                    Err(conflict(ErrorCode::LeaseNotPresentWithLeaseOperation))
                }
                (State::Broken, _) => Ok((
                    Lease::Broken {
                        id: current.unwrap_or_default(),
                    },
                    Outcome {
                        status: StatusCode::ACCEPTED,
                        id: None,
                        time_s: Some(0),
                    },
                )),
                (State::Breaking, Lease::Breaking { id, until_ms }) => {
                    // A second break may only shorten the break period.
                    let until = period_s.map_or(*until_ms, |p| (*until_ms).min(now_ms + p * 1000));
                    Ok(breaking(id.clone(), until, now_ms))
                }
                (
                    _,
                    Lease::Leased {
                        id,
                        duration_s,
                        until_ms,
                    },
                ) => {
                    let remaining = if *duration_s < 0 {
                        0
                    } else {
                        (*until_ms - now_ms).max(0)
                    };
                    let until = now_ms
                        + period_s.map_or(remaining, |p| {
                            (p * 1000).min(if *duration_s < 0 { p * 1000 } else { remaining })
                        });
                    Ok(breaking(id.clone(), until, now_ms))
                }
                _ => Err(conflict(ErrorCode::LeaseNotPresentWithLeaseOperation)),
            },
        }
    }

    /// Checks a data operation against the lease: with an active lease the matching id is
    /// required; without one, naming an id is an error. Reads pass `required = false`.
    pub fn check(
        &self,
        given: Option<&str>,
        now_ms: i64,
        target: Target,
        required: bool,
    ) -> Result<()> {
        let state = self.state(now_ms);
        let active = matches!(state, State::Leased | State::Breaking);
        let pick = |blob: ErrorCode, container: ErrorCode| match target {
            Target::Blob => StorageError::new(blob),
            Target::Container => StorageError::new(container),
        };
        match (active, given) {
            (true, None) if required => Err(StorageError::new(ErrorCode::LeaseIdMissing)),
            (true, None) => Ok(()),
            (true, Some(g)) if self.id() == Some(g) => Ok(()),
            (true, Some(_)) => Err(pick(
                ErrorCode::LeaseIdMismatchWithBlobOperation,
                ErrorCode::LeaseIdMismatchWithContainerOperation,
            )),
            (false, Some(_)) => Err(pick(
                ErrorCode::LeaseNotPresentWithBlobOperation,
                ErrorCode::LeaseNotPresentWithContainerOperation,
            )),
            (false, None) => Ok(()),
        }
    }
}

fn leased(id: String, duration_s: i64, now_ms: i64) -> Lease {
    let until_ms = if duration_s < 0 {
        i64::MAX
    } else {
        now_ms + duration_s * 1000
    };
    Lease::Leased {
        id,
        duration_s,
        until_ms,
    }
}

fn breaking(id: String, until_ms: i64, now_ms: i64) -> (Lease, Outcome) {
    let lease = if until_ms <= now_ms {
        Lease::Broken { id }
    } else {
        Lease::Breaking { id, until_ms }
    };
    let time_s = ((until_ms - now_ms).max(0) + 999) / 1000;
    (
        lease,
        Outcome {
            status: StatusCode::ACCEPTED,
            id: None,
            time_s: Some(time_s),
        },
    )
}

/// Proposed lease ids must be GUIDs (400 InvalidHeaderValue otherwise).
fn guid(name: &str, value: String) -> Result<String> {
    match uuid::Uuid::parse_str(value.trim()) {
        Ok(_) => Ok(value),
        Err(_) => Err(StorageError::invalid_header(name, &value)),
    }
}

/// Parses the lease headers of a Lease Blob / Lease Container request.
pub fn parse_action(header: &dyn Fn(&str) -> Option<String>) -> Result<Action> {
    let action = header("x-ms-lease-action")
        .ok_or_else(|| StorageError::missing_header("x-ms-lease-action"))?;
    let id =
        || header("x-ms-lease-id").ok_or_else(|| StorageError::missing_header("x-ms-lease-id"));
    Ok(match action.to_ascii_lowercase().as_str() {
        "acquire" => {
            let raw = header("x-ms-lease-duration")
                .ok_or_else(|| StorageError::missing_header("x-ms-lease-duration"))?;
            let duration_s: i64 = raw
                .trim()
                .parse()
                .map_err(|_| StorageError::invalid_header("x-ms-lease-duration", &raw))?;
            if duration_s != -1 && !(15..=60).contains(&duration_s) {
                return Err(StorageError::invalid_header("x-ms-lease-duration", &raw));
            }
            Action::Acquire {
                duration_s,
                proposed: header("x-ms-proposed-lease-id")
                    .map(|p| guid("x-ms-proposed-lease-id", p))
                    .transpose()?,
            }
        }
        "renew" => Action::Renew { id: id()? },
        "change" => Action::Change {
            id: id()?,
            proposed: guid(
                "x-ms-proposed-lease-id",
                header("x-ms-proposed-lease-id")
                    .ok_or_else(|| StorageError::missing_header("x-ms-proposed-lease-id"))?,
            )?,
        },
        "release" => Action::Release { id: id()? },
        "break" => {
            let period_s = match header("x-ms-lease-break-period") {
                None => None,
                Some(raw) => {
                    let p: i64 = raw.trim().parse().map_err(|_| {
                        StorageError::invalid_header("x-ms-lease-break-period", &raw)
                    })?;
                    if !(0..=60).contains(&p) {
                        return Err(StorageError::invalid_header(
                            "x-ms-lease-break-period",
                            &raw,
                        ));
                    }
                    Some(p)
                }
            };
            Action::Break { period_s }
        }
        _ => return Err(StorageError::invalid_header("x-ms-lease-action", &action)),
    })
}

#[cfg(test)]
mod tests;
