//! User delegation keys and the read-only blob SAS they sign: how image links are minted
//! when the app holds a Microsoft Entra ID token rather than an account key.
//!
//! https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas

use crate::sas::encode_query_value as enc;
use crate::shared_key::hmac_b64;
use chrono::{DateTime, Duration, Utc};

/// The version user delegation SAS tokens are signed for (its string-to-sign has the
/// `saoid`/`suoid`/`scid` lines and `ses`, nothing newer).
pub const UD_SAS_VERSION: &str = "2021-12-02";

/// A key as Get User Delegation Key returned it.
#[derive(Clone)]
pub struct DelegationKey {
    pub oid: String,
    pub tid: String,
    /// `skt` / `ske` exactly as they go into tokens.
    pub start: String,
    pub expiry: String,
    pub service: String,
    pub version: String,
    pub value: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for DelegationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationKey")
            .field("oid", &self.oid)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

fn sas_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Asks the Blob service for a key valid from a few minutes ago for `lifetime` (at most
/// seven days, Azure's limit).
pub async fn fetch(
    blobs: &azure_storage_blob::BlobServiceClient,
    lifetime: Duration,
) -> azure_core::Result<DelegationKey> {
    let now = Utc::now();
    let to_offset = |t: DateTime<Utc>| {
        azure_core::time::OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::DataConversion, e))
    };
    let info = azure_storage_blob::models::KeyInfo {
        start: Some(to_offset(now - Duration::minutes(5))?),
        expiry: Some(to_offset(now + lifetime)?),
        delegated_user_tid: None,
    };
    let key = blobs
        .get_user_delegation_key(info.try_into()?, None)
        .await?
        .into_model()?;
    let missing = |what: &str| {
        azure_core::Error::with_message(
            azure_core::error::ErrorKind::DataConversion,
            format!("the user delegation key has no {what}"),
        )
    };
    let time = |t: Option<azure_core::time::OffsetDateTime>, what: &str| {
        t.and_then(|t| DateTime::<Utc>::from_timestamp(t.unix_timestamp(), 0))
            .ok_or_else(|| missing(what))
    };
    let start = time(key.signed_start, "start")?;
    let expires_at = time(key.signed_expiry, "expiry")?;
    Ok(DelegationKey {
        oid: key.signed_oid.ok_or_else(|| missing("object id"))?,
        tid: key.signed_tid.ok_or_else(|| missing("tenant id"))?,
        start: sas_time(start),
        expiry: sas_time(expires_at),
        service: key.signed_service.unwrap_or_else(|| "b".into()),
        version: key.signed_version.ok_or_else(|| missing("version"))?,
        value: key.value.ok_or_else(|| missing("value"))?,
        expires_at,
    })
}

/// A user delegation SAS (without `?`) granting `permissions` on one blob until `expiry`
/// (which must not pass the key's own expiry).
pub fn blob_sas_query(
    account: &str,
    key: &DelegationKey,
    container: &str,
    blob: &str,
    permissions: &str,
    expiry: DateTime<Utc>,
) -> String {
    let sv = UD_SAS_VERSION;
    let se = sas_time(expiry.min(key.expires_at));
    let resource = format!("/blob/{account}/{container}/{blob}");
    // sp st se resource skoid sktid skt ske sks skv saoid suoid scid sip spr sv sr
    // snapshot ses rscc rscd rsce rscl rsct
    let sts = format!(
        "{permissions}\n\n{se}\n{resource}\n{}\n{}\n{}\n{}\n{}\n{}\n\n\n\n\n\n{sv}\nb\n\n\n\n\n\n\n",
        key.oid, key.tid, key.start, key.expiry, key.service, key.version
    );
    let sig = hmac_b64(&key.value, &sts);
    format!(
        "sv={sv}&sr=b&sp={}&se={}&skoid={}&sktid={}&skt={}&ske={}&sks={}&skv={}&sig={}",
        enc(permissions),
        enc(&se),
        enc(&key.oid),
        enc(&key.tid),
        enc(&key.start),
        enc(&key.expiry),
        enc(&key.service),
        enc(&key.version),
        enc(&sig)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_carries_the_key_fields() {
        let key = DelegationKey {
            oid: "o".into(),
            tid: "t".into(),
            start: "2030-01-01T00:00:00Z".into(),
            expiry: "2030-01-02T00:00:00Z".into(),
            service: "b".into(),
            version: "2025-11-05".into(),
            value: vec![1; 32],
            expires_at: DateTime::from_timestamp(1_893_542_400, 0).unwrap(),
        };
        let late = DateTime::from_timestamp(1_893_600_000, 0).unwrap();
        let q = blob_sas_query("acct", &key, "c", "a b.jpg", "r", late);
        // Capped at the key's expiry.
        assert!(q.contains("se=2030-01-02T00%3A00%3A00Z"), "{q}");
        for f in [
            "skoid=o",
            "sktid=t",
            "sks=b",
            "skv=2025-11-05",
            "sr=b",
            "sp=r",
        ] {
            assert!(q.contains(f), "{q} lacks {f}");
        }
    }
}
