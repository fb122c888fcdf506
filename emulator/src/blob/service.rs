//! Account-level blob operations of the Blob service alone (properties and stats are in
//! `account`).

use crate::http::response::Reply;
use crate::protocol::error::Result;
use crate::state::Ctx;
use http::StatusCode;

pub fn account_info(_ctx: &Ctx<'_>) -> Result<Reply> {
    let mut r = Reply::empty(StatusCode::OK);
    r.set("x-ms-sku-name", "Standard_RAGRS")
        .set("x-ms-account-kind", "StorageV2")
        .set("x-ms-is-hns-enabled", "false");
    Ok(r)
}

/// Get User Delegation Key: only a bearer token may ask, for a key that ends within seven
/// days. The key is derived, not stored (see `auth::delegation`).
pub fn user_delegation_key(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply> {
    use crate::auth::delegation::{self, KeyFields, MAX_KEY_LIFETIME_MS};
    use crate::auth::Principal;
    use crate::clock::parse_iso8601;
    use crate::protocol::error::{ErrorCode, StorageError};
    use crate::protocol::xml::{self, Writer};
    let Principal::Token(principal) = &ctx.principal else {
        return Err(StorageError::auth_failed(
            "Only authentication scheme Bearer is supported",
        ));
    };
    let doc = xml::parse(body)?;
    if doc.name != "KeyInfo" {
        return Err(StorageError::xml("The root element must be KeyInfo."));
    }
    let bad_node = |name: &str, value: &str| {
        StorageError::new(ErrorCode::InvalidXmlNodeValue)
            .with_detail("XmlNodeName", name.to_string())
            .with_detail("XmlNodeValue", value.to_string())
    };
    let now = ctx.app.clock.now_ms();
    let start_ms = match doc.child_text("Start").map(str::trim) {
        None | Some("") => now,
        Some(v) => parse_iso8601(v).ok_or_else(|| bad_node("Start", v))?,
    };
    let expiry_text = doc
        .child_text("Expiry")
        .map(str::trim)
        .ok_or_else(|| StorageError::xml("The Expiry element is required."))?;
    let expiry_ms = parse_iso8601(expiry_text).ok_or_else(|| bad_node("Expiry", expiry_text))?;
    if expiry_ms <= start_ms || expiry_ms <= now || expiry_ms > now + MAX_KEY_LIFETIME_MS {
        return Err(bad_node("Expiry", expiry_text)
            .with_message("The key must expire after its start, and within 7 days of now."));
    }
    let delegated_tid = doc.child_text("DelegatedUserTid").unwrap_or("").trim();
    let account = ctx
        .app
        .config
        .accounts
        .get(&ctx.route.account)
        .ok_or_else(|| StorageError::new(ErrorCode::ResourceNotFound))?;
    let key = account.keys.first().map(Vec::as_slice).unwrap_or_default();
    // The times as the client will put them in skt/ske (whole seconds, UTC).
    let text = |ms: i64| {
        crate::clock::ms_to_datetime(ms)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let start_ms = start_ms - start_ms.rem_euclid(1000);
    let expiry_ms = expiry_ms - expiry_ms.rem_euclid(1000);
    let fields = KeyFields {
        oid: &principal.oid,
        tid: &principal.tid,
        start_ms,
        expiry_ms,
        service: "b",
        version: ctx.version,
        delegated_tid,
    };
    let value = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        delegation::key(key, &fields),
    );
    let mut w = Writer::new();
    w.open("UserDelegationKey")
        .elem("SignedOid", &principal.oid)
        .elem("SignedTid", &principal.tid)
        .elem("SignedStart", &text(start_ms))
        .elem("SignedExpiry", &text(expiry_ms))
        .elem("SignedService", "b")
        .elem("SignedVersion", ctx.version);
    if !delegated_tid.is_empty() {
        w.elem("SignedDelegatedUserTid", delegated_tid);
    }
    w.elem("Value", &value).close("UserDelegationKey");
    Ok(Reply::xml(StatusCode::OK, w.finish()))
}
