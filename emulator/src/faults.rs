//! Fault injection: rules that make matching requests fail the way Azure fails (an error
//! answer, latency, a reset connection, a response cut short), so the code under test has
//! its retry and error paths exercised.
//!
//! A rule is checked after routing and before authorization and the handler, so a faulted
//! write is never applied (except a body cut: it damages the answer of a request that was
//! served). Rules live in memory: a restart clears them.

use crate::http::request::Service;
use crate::protocol::error::{ErrorCode, StorageError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A rule as posted and listed (JSON, camelCase). Absent match fields match anything.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// `blob` or `queue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The operation's name, as the request log shows it (`PutMessage`, `GetBlob`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// HTTP method (`GET`, `PUT`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A prefix of the resource: `queue`, `container` or `container/blob`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Chance (0-1) that a matching request is faulted (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fault only the next N matching requests (default: every one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Answer this status with `errorCode` (default: the code's own status).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Any code of the error table (`ServerBusy`, `OperationTimedOut`, `InternalError`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A `Retry-After` header on the error answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Delay before the request goes on (alone, or before another action).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Serve the request, but end the response body after this many bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_after_bytes: Option<u64>,
}

/// What happens to one request.
#[derive(Debug, Clone)]
pub enum Act {
    Error(Box<StorageError>),
    Reset,
    Cut(u64),
    /// Latency only: the request then goes on normally.
    Pass,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub rule: u64,
    pub latency: Option<Duration>,
    pub act: Act,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub id: u64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub hits: u64,
    /// Matching requests it will still fault (None: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// What a request looks like to the rules.
pub struct Target<'a> {
    pub service: Service,
    pub account: &'a str,
    pub operation: &'a str,
    pub method: &'a str,
    pub resource: &'a str,
}

#[derive(Debug)]
struct Rule {
    view: RuleView,
    act: Act,
}

#[derive(Default, Debug)]
pub struct Faults {
    inner: Mutex<State>,
    /// Rules held: with none (every request of a normal run) a request costs one load.
    rules: std::sync::atomic::AtomicUsize,
}

#[derive(Default, Debug)]
struct State {
    next_id: u64,
    rules: Vec<Rule>,
    /// xorshift64 state for probabilities (seeded from the first id's time).
    rng: u64,
}

fn bad(message: impl Into<String>) -> StorageError {
    StorageError::new(ErrorCode::InvalidInput).with_message(message)
}

impl Faults {
    /// Validates and adds a rule; returns it as listed.
    pub fn add(&self, spec: RuleSpec) -> Result<RuleView, StorageError> {
        let act = Self::action(&spec)?;
        if let Some(p) = spec.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad("probability must be between 0 and 1"));
            }
        }
        if let Some(s) = &spec.service {
            if s != "blob" && s != "queue" {
                return Err(bad("service must be blob or queue"));
            }
        }
        let mut st = self.inner.lock();
        st.next_id += 1;
        let view = RuleView {
            id: st.next_id,
            remaining: spec.count,
            spec,
            hits: 0,
        };
        st.rules.push(Rule {
            view: view.clone(),
            act,
        });
        self.rules.store(st.rules.len(), Ordering::Release);
        Ok(view)
    }

    fn action(spec: &RuleSpec) -> Result<Act, StorageError> {
        let error = spec.status.is_some() || spec.error_code.is_some();
        let reset = spec.reset == Some(true);
        let cut = spec.cut_after_bytes.is_some();
        match (error, reset, cut) {
            (true, false, false) => {
                let code = match &spec.error_code {
                    Some(c) => ErrorCode::from_name(c)
                        .ok_or_else(|| bad(format!("errorCode '{c}' is not in the error table")))?,
                    None => match spec.status {
                        Some(503) => ErrorCode::ServerBusy,
                        Some(500) => ErrorCode::InternalError,
                        _ => return Err(bad("errorCode is needed with that status")),
                    },
                };
                let mut e = StorageError::new(code);
                if let Some(s) = spec.status {
                    let status = http::StatusCode::from_u16(s)
                        .ok()
                        .filter(|s| s.is_client_error() || s.is_server_error())
                        .ok_or_else(|| bad("status must be 400-599"))?;
                    e = e.with_status(status);
                }
                if let Some(m) = &spec.message {
                    e = e.with_message(m.clone());
                }
                if let Some(r) = spec.retry_after_seconds {
                    e = e.with_header("retry-after", r.to_string());
                }
                Ok(Act::Error(Box::new(e)))
            }
            (false, true, false) => Ok(Act::Reset),
            (false, false, true) => Ok(Act::Cut(spec.cut_after_bytes.unwrap_or(0))),
            (false, false, false) if spec.latency_ms.is_some() => Ok(Act::Pass),
            (false, false, false) => Err(bad(
                "a rule needs an action: status/errorCode, latencyMs, reset or cutAfterBytes",
            )),
            _ => Err(bad(
                "one action per rule: an error, a reset or a cut (latencyMs may go with any)",
            )),
        }
    }

    pub fn list(&self) -> Vec<RuleView> {
        self.inner
            .lock()
            .rules
            .iter()
            .map(|r| r.view.clone())
            .collect()
    }

    /// Removes one rule (true if it existed), or all with None.
    pub fn remove(&self, id: Option<u64>) -> bool {
        let mut st = self.inner.lock();
        let before = st.rules.len();
        match id {
            None => st.rules.clear(),
            Some(id) => st.rules.retain(|r| r.view.id != id),
        }
        self.rules.store(st.rules.len(), Ordering::Release);
        id.is_none() || st.rules.len() != before
    }

    pub fn is_empty(&self) -> bool {
        self.rules.load(Ordering::Acquire) == 0
    }

    /// The first live rule matching `t` that fires (its count and probability allowing).
    pub fn decide(&self, t: &Target<'_>) -> Option<Decision> {
        let mut st = self.inner.lock();
        if st.rng == 0 {
            st.rng = (uuid::Uuid::new_v4().as_u128() as u64) | 1;
        }
        let State { rules, rng, .. } = &mut *st;
        let service = t.service.name();
        for rule in rules.iter_mut() {
            let s = &rule.view.spec;
            let matches = s.service.as_deref().is_none_or(|v| v == service)
                && s.account.as_deref().is_none_or(|v| v == t.account)
                && s.operation
                    .as_deref()
                    .is_none_or(|v| v.eq_ignore_ascii_case(t.operation))
                && s.method
                    .as_deref()
                    .is_none_or(|v| v.eq_ignore_ascii_case(t.method))
                && s.resource
                    .as_deref()
                    .is_none_or(|v| t.resource.starts_with(v));
            if !matches || rule.view.remaining == Some(0) {
                continue;
            }
            if let Some(p) = s.probability {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                if (*rng >> 11) as f64 / (1u64 << 53) as f64 >= p {
                    continue;
                }
            }
            if let Some(r) = rule.view.remaining.as_mut() {
                *r -= 1;
            }
            rule.view.hits += 1;
            return Some(Decision {
                rule: rule.view.id,
                latency: s.latency_ms.map(Duration::from_millis),
                act: rule.act.clone(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(op: &'static str) -> Target<'static> {
        Target {
            service: Service::Blob,
            account: "devstoreaccount1",
            operation: op,
            method: "HEAD",
            resource: "photos/a.jpg",
        }
    }

    #[test]
    fn the_documented_rule_fires_once() {
        let f = Faults::default();
        let spec: RuleSpec = serde_json::from_str(
            r#"{"operation":"GetBlobProperties","status":503,"errorCode":"ServerBusy","count":1}"#,
        )
        .unwrap();
        f.add(spec).unwrap();
        assert!(f.decide(&target("GetBlob")).is_none());
        let d = f.decide(&target("GetBlobProperties")).unwrap();
        match d.act {
            Act::Error(e) => {
                assert_eq!(e.code, ErrorCode::ServerBusy);
                assert_eq!(e.status.as_u16(), 503);
            }
            other => panic!("{other:?}"),
        }
        assert!(f.decide(&target("GetBlobProperties")).is_none());
        let l = f.list();
        assert_eq!((l[0].hits, l[0].remaining), (1, Some(0)));
    }

    #[test]
    fn bad_rules_are_refused() {
        let f = Faults::default();
        for body in [
            r#"{}"#,
            r#"{"errorCode":"NoSuchCode"}"#,
            r#"{"status":200,"errorCode":"ServerBusy"}"#,
            r#"{"status":503,"reset":true}"#,
            r#"{"latencyMs":5,"probability":1.5}"#,
            r#"{"service":"table","latencyMs":1}"#,
        ] {
            let spec: RuleSpec = serde_json::from_str(body).unwrap();
            assert!(f.add(spec).is_err(), "{body}");
        }
        assert!(serde_json::from_str::<RuleSpec>(r#"{"colour":"red"}"#).is_err());
        assert!(f.list().is_empty());
    }

    #[test]
    fn probability_is_roughly_kept_and_prefixes_match() {
        let f = Faults::default();
        f.add(RuleSpec {
            resource: Some("photos/".into()),
            probability: Some(0.25),
            latency_ms: Some(1),
            ..Default::default()
        })
        .unwrap();
        let fired = (0..4000)
            .filter(|_| f.decide(&target("GetBlob")).is_some())
            .count();
        assert!((700..1300).contains(&fired), "{fired}");
        let other = Target {
            resource: "other/a.jpg",
            ..target("GetBlob")
        };
        assert!(f.decide(&other).is_none());
        assert!(f.remove(Some(1)));
        assert!(!f.remove(Some(1)));
    }
}
