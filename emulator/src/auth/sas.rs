//! Shared access signatures: the token's fields, its string-to-sign, and the checks that do
//! not need the operation (signature, time window, protocol, source IP).

use crate::clock::parse_iso8601;
use crate::http::request::Query;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use std::net::IpAddr;

/// The SAS fields of a query string, values decoded. Absent fields are empty strings,
/// which is exactly how they enter the string-to-sign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SasToken {
    pub sv: String,
    pub ss: String,
    pub srt: String,
    pub sp: String,
    pub st: String,
    pub se: String,
    pub sip: String,
    pub spr: String,
    pub si: String,
    pub sr: String,
    pub ses: String,
    pub sig: String,
    pub rscc: String,
    pub rscd: String,
    pub rsce: String,
    pub rscl: String,
    pub rsct: String,
    // User delegation SAS: the key's fields, then who the SAS is for.
    pub skoid: String,
    pub sktid: String,
    pub skt: String,
    pub ske: String,
    pub sks: String,
    pub skv: String,
    pub skdutid: String,
    pub sduoid: String,
    pub saoid: String,
    pub suoid: String,
    pub scid: String,
    /// Signed request headers and query parameters (names; values come from the request).
    pub srh: String,
    pub srq: String,
}

impl SasToken {
    /// The SAS parameters, each of which may appear once.
    const FIELDS: [&'static str; 30] = [
        "sv", "ss", "srt", "sp", "st", "se", "sip", "spr", "si", "sr", "ses", "sig", "rscc",
        "rscd", "rsce", "rscl", "rsct", "skoid", "sktid", "skt", "ske", "sks", "skv", "skdutid",
        "sduoid", "saoid", "suoid", "scid", "srh", "srq",
    ];

    /// A SAS parameter given twice: the signature cannot say which one it covers.
    pub fn duplicated(q: &Query) -> Option<&'static str> {
        Self::FIELDS
            .into_iter()
            .find(|f| q.pairs().iter().filter(|(k, _)| k == f).count() > 1)
    }

    /// None when the query carries no signature at all.
    pub fn from_query(q: &Query) -> Option<SasToken> {
        let sig = q.get("sig")?;
        let f = |n: &str| q.get(n).unwrap_or("").to_string();
        Some(SasToken {
            sv: f("sv"),
            ss: f("ss"),
            srt: f("srt"),
            sp: f("sp"),
            st: f("st"),
            se: f("se"),
            sip: f("sip"),
            spr: f("spr"),
            si: f("si"),
            sr: f("sr"),
            ses: f("ses"),
            sig: sig.to_string(),
            rscc: f("rscc"),
            rscd: f("rscd"),
            rsce: f("rsce"),
            rscl: f("rscl"),
            rsct: f("rsct"),
            skoid: f("skoid"),
            sktid: f("sktid"),
            skt: f("skt"),
            ske: f("ske"),
            sks: f("sks"),
            skv: f("skv"),
            skdutid: f("skdutid"),
            sduoid: f("sduoid"),
            saoid: f("saoid"),
            suoid: f("suoid"),
            scid: f("scid"),
            srh: f("srh"),
            srq: f("srq"),
        })
    }

    pub fn is_account_sas(&self) -> bool {
        !self.ss.is_empty() && !self.srt.is_empty()
    }

    /// Signed with a user delegation key rather than an account key.
    pub fn is_user_delegation(&self) -> bool {
        !self.skoid.is_empty()
    }
}

pub fn account_string_to_sign(account: &str, t: &SasToken) -> String {
    let mut s = format!(
        "{account}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        t.sp, t.ss, t.srt, t.st, t.se, t.sip, t.spr, t.sv
    );
    if t.sv.as_str() >= "2020-12-06" {
        s.push_str(&t.ses);
        s.push('\n');
    }
    s
}

/// Queue service SAS. The policy fields (sp/st/se) are the token's own, as signed.
pub fn queue_string_to_sign(account: &str, queue: &str, t: &SasToken) -> String {
    let resource = if t.sv.as_str() >= "2015-02-21" {
        format!("/queue/{account}/{queue}")
    } else {
        format!("/{account}/{queue}")
    };
    if t.sv.as_str() >= "2015-04-05" {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}",
            t.sp, t.st, t.se, t.si, t.sip, t.spr, t.sv
        )
    } else {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}",
            t.sp, t.st, t.se, t.si, t.sv
        )
    }
}

/// `/blob/account/container[/blob]` (no `/blob` prefix before 2015-02-21).
pub fn blob_resource(account: &str, container: &str, blob: Option<&str>, sv: &str) -> String {
    let mut r = if sv >= "2015-02-21" {
        format!("/blob/{account}/{container}")
    } else {
        format!("/{account}/{container}")
    };
    if let Some(b) = blob {
        r.push('/');
        r.push_str(b);
    }
    r
}

/// Blob (and container) service SAS, by version.
pub fn blob_string_to_sign(resource: &str, snapshot: &str, t: &SasToken) -> String {
    let rsc = format!("{}\n{}\n{}\n{}\n{}", t.rscc, t.rscd, t.rsce, t.rscl, t.rsct);
    let v = t.sv.as_str();
    if v >= "2020-12-06" {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}\n{}\n{snapshot}\n{}\n{rsc}",
            t.sp, t.st, t.se, t.si, t.sip, t.spr, t.sv, t.sr, t.ses
        )
    } else if v >= "2018-11-09" {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}\n{}\n{snapshot}\n{rsc}",
            t.sp, t.st, t.se, t.si, t.sip, t.spr, t.sv, t.sr
        )
    } else if v >= "2015-04-05" {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}\n{}\n{}\n{rsc}",
            t.sp, t.st, t.se, t.si, t.sip, t.spr, t.sv
        )
    } else if v >= "2013-08-15" {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}\n{rsc}",
            t.sp, t.st, t.se, t.si, t.sv
        )
    } else {
        format!(
            "{}\n{}\n{}\n{resource}\n{}\n{}",
            t.sp, t.st, t.se, t.si, t.sv
        )
    }
}

fn version_ok(v: &str) -> bool {
    crate::protocol::version::is_valid(v)
}

/// Checks that apply to every SAS once the signature matched: version, time window,
/// protocol and source address. `start`/`expiry` are the effective values (token or
/// stored policy).
pub fn check_window(
    t: &SasToken,
    start: &str,
    expiry: &str,
    now_ms: i64,
    peer: IpAddr,
    tls: bool,
) -> Result<()> {
    if !version_ok(&t.sv) {
        return Err(StorageError::auth_failed(format!(
            "The signed version '{}' is invalid.",
            t.sv
        )));
    }
    if !start.is_empty() {
        let st = parse_iso8601(start).ok_or_else(|| {
            StorageError::auth_failed(format!("The signed start '{start}' is not a valid date."))
        })?;
        if now_ms < st {
            return Err(StorageError::auth_failed(
                "Signed start time is in the future.",
            ));
        }
    }
    if expiry.is_empty() {
        return Err(StorageError::auth_failed("Signed expiry time is missing."));
    }
    let se = parse_iso8601(expiry).ok_or_else(|| {
        StorageError::auth_failed(format!("The signed expiry '{expiry}' is not a valid date."))
    })?;
    if now_ms > se {
        return Err(StorageError::auth_failed("Signed expiry time has passed."));
    }
    match t.spr.as_str() {
        "" | "https,http" | "http,https" => {}
        "http" if !tls => {}
        "https" if tls => {}
        "https" | "http" => {
            return Err(StorageError::new(ErrorCode::AuthorizationProtocolMismatch))
        }
        other => {
            return Err(StorageError::auth_failed(format!(
                "The signed protocol '{other}' is invalid."
            )))
        }
    }
    if !t.sip.is_empty() && !ip_allowed(&t.sip, peer) {
        return Err(StorageError::new(ErrorCode::AuthorizationSourceIPMismatch));
    }
    Ok(())
}

/// `sip` is one address or an inclusive range `a.b.c.d-e.f.g.h`.
pub fn ip_allowed(sip: &str, peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match sip.split_once('-') {
        Some((lo, hi)) => match (lo.trim().parse::<IpAddr>(), hi.trim().parse::<IpAddr>()) {
            (Ok(lo), Ok(hi)) => lo <= peer && peer <= hi,
            _ => false,
        },
        None => sip.trim().parse::<IpAddr>().is_ok_and(|ip| ip == peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SasToken {
        SasToken {
            sv: "2025-11-05".into(),
            ss: "q".into(),
            srt: "sco".into(),
            sp: "rwdlacup".into(),
            se: "2030-01-01T00:00:00Z".into(),
            spr: "https,http".into(),
            sig: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn account_sts() {
        let t = token();
        assert_eq!(
            account_string_to_sign("devstoreaccount1", &t),
            "devstoreaccount1\nrwdlacup\nq\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2025-11-05\n\n"
        );
        let old = SasToken {
            sv: "2019-02-02".into(),
            ..t
        };
        assert_eq!(
            account_string_to_sign("a", &old),
            "a\nrwdlacup\nq\nsco\n\n2030-01-01T00:00:00Z\n\nhttps,http\n2019-02-02\n"
        );
    }

    #[test]
    fn queue_sts() {
        let t = SasToken {
            sp: "raup".into(),
            si: "policy".into(),
            ..token()
        };
        assert_eq!(
            queue_string_to_sign("acct", "q1", &t),
            "raup\n\n2030-01-01T00:00:00Z\n/queue/acct/q1\npolicy\n\nhttps,http\n2025-11-05"
        );
        let old = SasToken {
            sv: "2013-08-15".into(),
            ..t
        };
        assert_eq!(
            queue_string_to_sign("acct", "q1", &old),
            "raup\n\n2030-01-01T00:00:00Z\n/acct/q1\npolicy\n2013-08-15"
        );
    }

    #[test]
    fn blob_sts() {
        let t = SasToken {
            sp: "r".into(),
            sr: "b".into(),
            rsct: "text/plain".into(),
            ..token()
        };
        let res = blob_resource("acct", "c1", Some("dir/a b.txt"), &t.sv);
        assert_eq!(res, "/blob/acct/c1/dir/a b.txt");
        assert_eq!(
            blob_string_to_sign(&res, "", &t),
            "r\n\n2030-01-01T00:00:00Z\n/blob/acct/c1/dir/a b.txt\n\n\nhttps,http\n2025-11-05\nb\n\n\n\n\n\n\ntext/plain"
        );
        let old = SasToken {
            sv: "2017-07-29".into(),
            ..t.clone()
        };
        assert_eq!(
            blob_string_to_sign(&blob_resource("acct", "c1", None, &old.sv), "", &old),
            "r\n\n2030-01-01T00:00:00Z\n/blob/acct/c1\n\n\nhttps,http\n2017-07-29\n\n\n\n\ntext/plain"
        );
    }

    #[test]
    fn windows_and_addresses() {
        let t = token();
        let now = parse_iso8601("2029-01-01").expect("date");
        let lo: IpAddr = [127, 0, 0, 1].into();
        assert!(check_window(&t, "", &t.se, now, lo, false).is_ok());
        let late = parse_iso8601("2031-01-01").expect("date");
        assert_eq!(
            check_window(&t, "", &t.se, late, lo, false).map_err(|e| e.code),
            Err(ErrorCode::AuthenticationFailed)
        );
        assert_eq!(
            check_window(&t, "2029-06-01", &t.se, now, lo, false).map_err(|e| e.code),
            Err(ErrorCode::AuthenticationFailed)
        );
        assert_eq!(
            check_window(&t, "", "", now, lo, false).map_err(|e| e.code),
            Err(ErrorCode::AuthenticationFailed)
        );
        let https = SasToken {
            spr: "https".into(),
            ..t.clone()
        };
        assert_eq!(
            check_window(&https, "", &t.se, now, lo, false).map_err(|e| e.code),
            Err(ErrorCode::AuthorizationProtocolMismatch)
        );
        let ip = SasToken {
            sip: "10.0.0.1-10.0.0.9".into(),
            ..t.clone()
        };
        assert_eq!(
            check_window(&ip, "", &t.se, now, lo, false).map_err(|e| e.code),
            Err(ErrorCode::AuthorizationSourceIPMismatch)
        );
        assert!(ip_allowed("127.0.0.0-127.0.0.255", lo));
        assert!(ip_allowed(
            "127.0.0.1",
            "::ffff:127.0.0.1".parse().expect("ip")
        ));
        assert!(!ip_allowed("garbage", lo));
    }
}
