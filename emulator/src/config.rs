//! Accounts and run-time options.

use base64::Engine;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The newest service version we know of; used when a request names none.
pub const LATEST_VERSION: &str = "2026-06-06";

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
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(key.trim())
                    .map_err(|_| format!("the key of account '{name}' is not valid base64"))?;
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            blob_addr: SocketAddr::from(([127, 0, 0, 1], 10000)),
            queue_addr: SocketAddr::from(([127, 0, 0, 1], 10001)),
            location: None,
            accounts: Accounts::dev(),
            loose: false,
            strict_version: false,
            cache_bytes: 8 * 1024 * 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
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
        assert!(Accounts::parse("acct1:not base64!").is_err());
        assert!(Accounts::parse("acct1").is_err());
        assert!(Accounts::parse("").is_err());
        assert_eq!(
            Accounts::dev().get(DEV_ACCOUNT).map(|a| a.keys[0].len()),
            Some(64)
        );
    }
}
