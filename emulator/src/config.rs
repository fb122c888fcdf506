//! Accounts and run-time options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The newest service version we know of; used when a request names none.
pub const LATEST_VERSION: &str = "2026-06-06";

/// Decodes an account key as Azurite and the SDKs do (Node's `Buffer.from(key, "base64")`):
/// both alphabets (`+/` and `-_`), padding optional, whitespace and other characters
/// skipped, and bits that do not fill a byte dropped. Azurite's own tests use keys such as
/// `testing_key`, which a strict decoder refuses.
pub fn lenient_base64(key: &str) -> Vec<u8> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in key.chars() {
        let v = match c {
            'A'..='Z' => c as u32 - 'A' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 26,
            '0'..='9' => c as u32 - '0' as u32 + 52,
            '+' | '-' => 62,
            '/' | '_' => 63,
            '=' => break,
            _ => continue,
        };
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    /// Decoded keys (one or two).
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub struct Accounts {
    list: Vec<Account>,
}

impl Accounts {
    pub fn dev() -> Self {
        Self::parse(&format!("{DEV_ACCOUNT}:{DEV_KEY}")).unwrap_or_default()
    }

    /// Parses Azurite's `AZURITE_ACCOUNTS` form: `acct1:key1[:key2];acct2:key1`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let name = fields.next().unwrap_or_default().trim().to_string();
            if name.len() < 3
                || name.len() > 24
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(format!(
                    "invalid account name '{name}' (3-24 lowercase letters and digits)"
                ));
            }
            let mut keys = Vec::new();
            for key in fields {
                let decoded = lenient_base64(key);
                if decoded.is_empty() {
                    return Err(format!(
                        "the key of account '{name}' decodes to nothing (it must be base64)"
                    ));
                }
                keys.push(decoded);
            }
            if keys.is_empty() || keys.len() > 2 {
                return Err(format!("account '{name}' needs one or two keys"));
            }
            list.push(Account { name, keys });
        }
        if list.is_empty() {
            return Err("no accounts given".into());
        }
        Ok(Accounts { list })
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.list.iter()
    }

    pub fn first(&self) -> Option<&Account> {
        self.list.first()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub blob_addr: SocketAddr,
    pub queue_addr: SocketAddr,
    /// Which services listen (both by default; `azurite-blob` and `azurite-queue` serve one).
    pub serve_blob: bool,
    pub serve_queue: bool,
    /// None: a temporary store that disappears on exit.
    pub location: Option<PathBuf>,
    pub accounts: Accounts,
    /// Relaxes checks that Azure makes but local tools often trip over (unknown headers...).
    pub loose: bool,
    /// Reject versions newer than `LATEST_VERSION` (off by default, unlike Azurite).
    pub strict_version: bool,
    /// Store page cache size in bytes.
    pub cache_bytes: u64,
    /// A connection that has not sent a complete request head within this is closed
    /// (idle keep-alive connections included).
    pub header_timeout: Duration,
    /// A request body that delivers no bytes for this long is abandoned (a stalled client
    /// must not hold a connection and its task forever).
    pub body_timeout: Duration,
    /// How long an archived blob takes to come back online after Set Blob Tier, on the
    /// emulator's clock (Azure takes hours; moving the admin clock skips the wait).
    pub rehydrate_delay: Duration,
    /// What an acknowledged write survives.
    pub durability: DurabilityMode,
    /// Blob versioning for accounts the admin endpoint has not set (Azure: off).
    pub blob_versioning: bool,
    /// Container soft delete retention for accounts the admin endpoint has not set.
    pub container_soft_delete_days: Option<u32>,
    /// Serve HTTPS with this certificate (both services).
    pub tls: Option<crate::http::tls::TlsFiles>,
    /// Accept Microsoft Entra ID bearer tokens (Azurite's `--oauth basic`; HTTPS only).
    pub oauth: bool,
    /// More roots to trust when fetching `https://` copy sources (PEM).
    pub copy_source_ca: Option<PathBuf>,
    /// Requests kept for `/_emulator/requests` (0: none).
    pub request_log: usize,
    /// Data to load at start (`--seed`: a folder or a JSON manifest).
    pub seed: Option<PathBuf>,
    /// Blob event subscriptions to add (or replace, by name) at start
    /// (`--eventSubscription`).
    pub event_subscriptions: Vec<crate::store::events::Subscription>,
}

/// What a 2xx promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    /// The write is in the operating system's hands (sled's log written into the kernel,
    /// blob files fsynced): it survives the process being killed, not a power cut.
    #[default]
    Process,
    /// Also the disk's: each group commit ends with an fdatasync of the store's files, so
    /// the write survives a power cut (costs a device cache flush per group commit).
    Power,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            blob_addr: SocketAddr::from(([127, 0, 0, 1], 10000)),
            queue_addr: SocketAddr::from(([127, 0, 0, 1], 10001)),
            serve_blob: true,
            serve_queue: true,
            location: None,
            accounts: Accounts::dev(),
            loose: false,
            strict_version: false,
            cache_bytes: 8 * 1024 * 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            rehydrate_delay: Duration::from_secs(5),
            durability: DurabilityMode::Process,
            blob_versioning: false,
            container_soft_delete_days: None,
            tls: None,
            oauth: false,
            copy_source_ca: None,
            request_log: 1000,
            seed: None,
            event_subscriptions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accounts() {
        let a = Accounts::parse("acct1:a2V5MQ==:a2V5Mg==;acct2:a2V5MQ==").expect("valid");
        assert_eq!(a.get("acct1").map(|a| a.keys.len()), Some(2));
        assert_eq!(
            a.get("acct2").map(|a| a.keys[0].clone()),
            Some(b"key1".to_vec())
        );
        assert!(Accounts::parse("Bad:a2V5MQ==").is_err());
        assert!(Accounts::parse("acct1:!!!").is_err(), "a key of nothing");
        assert!(Accounts::parse("acct1").is_err());
        // What Node's Buffer.from(key, "base64") gives, as Azurite reads keys.
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&lenient_base64("testing_key")), "b5eb2d8a783f91ec");
        assert_eq!(hex(&lenient_base64("ab+/-_=x")), "69bfbffb");
        assert_eq!(hex(&lenient_base64("a b\nc d")), "69b71d");
        assert!(Accounts::parse("acct1:testing_key").is_ok());
        assert!(Accounts::parse("").is_err());
        assert_eq!(
            Accounts::dev().get(DEV_ACCOUNT).map(|a| a.keys[0].len()),
            Some(64)
        );
    }
}
