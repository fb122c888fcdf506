//! Helpers for conformance tests that drive an Azure Storage endpoint with Microsoft's
//! official Rust SDK: a target (our emulator binary started on free ports, or any endpoint
//! named by a connection string) and a Shared Key per-try policy, which the SDK lacks.
#![allow(clippy::unwrap_used)]

pub mod clients;
pub mod raw;
pub mod shared_key;
pub mod system;
pub mod target;
pub mod xml;

pub use shared_key::{account_sas_query, SharedKeyPolicy};
pub use target::{Credentials, EmulatorProcess, Target};

pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A name unique to this test run, valid for queues and containers.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}x{}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
