//! Stored access policies (`SignedIdentifiers`) of queues and containers.

use crate::clock::{iso8601_7, parse_iso8601};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::xml::Writer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicy {
    pub start: Option<String>,
    pub expiry: Option<String>,
    pub permission: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIdentifier {
    pub id: String,
    pub policy: AccessPolicy,
}

pub const MAX_SIGNED_IDENTIFIERS: usize = 5;

/// Parses a `SignedIdentifiers` body; `allowed` is the permission alphabet (`raup` for
/// queues). Times are normalized to Azure's 7-digit form.
pub fn parse_signed_identifiers(body: &[u8], allowed: &str) -> Result<Vec<SignedIdentifier>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let root = crate::protocol::xml::parse(body)?;
    if root.name != "SignedIdentifiers" {
        return Err(StorageError::xml(
            "The root element must be SignedIdentifiers.",
        ));
    }
    let mut out: Vec<SignedIdentifier> = Vec::new();
    for si in root.children_named("SignedIdentifier") {
        let id = si.child_text("Id").ok_or_else(|| {
            StorageError::new(ErrorCode::InvalidXmlDocument)
                .with_detail("Reason", "SignedIdentifier needs an Id.")
        })?;
        if id.is_empty() || id.chars().count() > 64 {
            return Err(StorageError::new(ErrorCode::InvalidXmlDocument)
                .with_detail("Reason", "Signed identifier ids are 1 to 64 characters."));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(StorageError::new(ErrorCode::InvalidXmlDocument)
                .with_detail("Reason", "Signed identifier ids must be unique."));
        }
        let mut policy = AccessPolicy::default();
        if let Some(ap) = si.child("AccessPolicy") {
            let time = |name: &str| -> Result<Option<String>> {
                match ap.child_text(name) {
                    None | Some("") => Ok(None),
                    Some(t) => parse_iso8601(t)
                        .map(|ms| Some(iso8601_7(ms)))
                        .ok_or_else(|| {
                            StorageError::new(ErrorCode::InvalidXmlNodeValue)
                                .with_detail("XmlNodeName", name)
                                .with_detail("XmlNodeValue", t)
                        }),
                }
            };
            policy.start = time("Start")?;
            policy.expiry = time("Expiry")?;
            if let Some(p) = ap.child_text("Permission") {
                if !p.chars().all(|c| allowed.contains(c)) {
                    return Err(StorageError::new(ErrorCode::InvalidXmlNodeValue)
                        .with_detail("XmlNodeName", "Permission")
                        .with_detail("XmlNodeValue", p));
                }
                policy.permission = Some(p.to_string());
            }
        }
        out.push(SignedIdentifier {
            id: id.to_string(),
            policy,
        });
    }
    if out.len() > MAX_SIGNED_IDENTIFIERS {
        return Err(StorageError::new(ErrorCode::InvalidXmlDocument)
            .with_detail("Reason", "At most 5 signed identifiers are allowed."));
    }
    Ok(out)
}

pub fn write_signed_identifiers(ids: &[SignedIdentifier]) -> String {
    let mut w = Writer::new();
    if ids.is_empty() {
        return w.empty("SignedIdentifiers").finish();
    }
    w.open("SignedIdentifiers");
    for si in ids {
        w.open("SignedIdentifier")
            .elem("Id", &si.id)
            .open("AccessPolicy");
        w.opt("Start", si.policy.start.as_deref());
        w.opt("Expiry", si.policy.expiry.as_deref());
        w.opt("Permission", si.policy.permission.as_deref());
        w.close("AccessPolicy").close("SignedIdentifier");
    }
    w.close("SignedIdentifiers").finish()
}
