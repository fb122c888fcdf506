//! Hand-made HTTP requests for tests that need what no SDK sends: malformed framing,
//! hostile headers, requests signed with the wrong key or a SAS lacking a permission.
//! One request per connection (`Connection: close`), answers parsed just enough.

use crate::target::EmulatorProcess;
use crate::{account_sas_query, DEV_ACCOUNT, DEV_KEY};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A well-formed account key that is not the account's.
pub const OTHER_KEY: &str =
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Svc {
    Queue,
    Blob,
}

/// How a hand-made request is authorized.
#[derive(Clone, PartialEq, Debug)]
pub enum Auth {
    /// The server's all-permissions account SAS.
    Sas,
    /// Shared Key with the account's key.
    Key,
    /// Shared Key signed with a key that is not the account's.
    WrongKey,
    /// No credentials at all.
    None,
    /// This SAS query string (without `?`).
    Query(String),
}

pub struct Resp {
    pub status: u16,
    pub code: Option<String>,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request as bytes: `Connection: close`, its Content-Length, and `x-ms-version` unless
/// `headers` names one.
pub fn request_bytes(
    method: &str,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-ms-version"))
    {
        head.push_str("x-ms-version: 2025-11-05\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a connection of its own, and the whole answer: the body de-chunked and
/// cut to its Content-Length. An error when the connection fails or the answer is cut
/// short (what a harness that kills the server must tell apart from an answer).
pub fn exchange(addr: &str, bytes: &[u8], timeout: Duration) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(bytes)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    if !out.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::other("truncated response"));
    }
    let mut r = parse(&out);
    if r.status == 0 {
        return Err(std::io::Error::other("bad status line"));
    }
    if let Some(len) = r
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        if r.body.len() < len {
            return Err(std::io::Error::other("short body"));
        }
        r.body.truncate(len);
    } else if r
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        r.body = dechunk(&r.body).ok_or_else(|| std::io::Error::other("bad chunked body"))?;
    }
    Ok(r)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..nl])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        b = &b[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// An emulator process plus an all-permissions account SAS for it.
pub struct Server {
    pub emu: EmulatorProcess,
    pub sas: String,
}

impl Server {
    pub fn addr(&self, svc: Svc) -> String {
        let base = match svc {
            Svc::Queue => &self.emu.queue_base,
            Svc::Blob => &self.emu.blob_base,
        };
        base.trim_start_matches("http://").to_string()
    }

    /// Builds the request head (signed as asked) for `path` under the account.
    pub fn head(
        &self,
        svc: Svc,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body_len: usize,
        auth: &Auth,
    ) -> String {
        let addr = self.addr(svc);
        let sep = if path.contains('?') { '&' } else { '?' };
        let full = match auth {
            Auth::Sas => format!("/{DEV_ACCOUNT}{path}{sep}{}", self.sas),
            Auth::Query(q) => format!("/{DEV_ACCOUNT}{path}{sep}{q}"),
            _ => format!("/{DEV_ACCOUNT}{path}"),
        };
        let mut lines = vec![
            format!("{method} {full} HTTP/1.1"),
            format!("Host: {addr}"),
            "Connection: close".to_string(),
            format!("Content-Length: {body_len}"),
        ];
        let has_version = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-ms-version"));
        if !has_version {
            lines.push("x-ms-version: 2025-11-05".to_string());
        }
        for (k, v) in headers {
            lines.push(format!("{k}: {v}"));
        }
        if matches!(auth, Auth::Key | Auth::WrongKey) {
            let mut signed: Vec<(&str, &str)> = headers.to_vec();
            if !has_version {
                signed.push(("x-ms-version", "2025-11-05"));
            }
            // Any other 64-byte key: a signature the account cannot verify.
            let key = if *auth == Auth::Key {
                DEV_KEY
            } else {
                OTHER_KEY
            };
            let url = format!("http://{addr}{full}");
            for (k, v) in crate::shared_key::sign(DEV_ACCOUNT, key, method, &url, &signed, body_len)
            {
                lines.push(format!("{k}: {v}"));
            }
        }
        lines.join("\r\n") + "\r\n\r\n"
    }

    pub fn send(
        &self,
        svc: Svc,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        auth: &Auth,
    ) -> Resp {
        let head = self.head(svc, method, path, headers, body.len(), auth);
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        raw(&self.addr(svc), &bytes)
    }
}

/// Sends bytes, reads until the server closes (Connection: close) or 10 s pass.
pub fn raw(addr: &str, bytes: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading a large body: ignore write errors.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse(&out)
}

pub fn parse(out: &[u8]) -> Resp {
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let code = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .starts_with("x-ms-error-code:")
            .then(|| l[16..].trim().to_string())
    });
    let body = out.get(end + 4..).unwrap_or_default().to_vec();
    let headers = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        code,
        head,
        headers,
        body,
    }
}

pub fn message(text: &str) -> Vec<u8> {
    format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>").into_bytes()
}

/// An in-memory emulator with `extra` flags.
pub fn start(extra: &[&str]) -> Server {
    let emu = EmulatorProcess::start(&[&["--inMemoryPersistence"], extra].concat());
    let sas = account_sas_query(
        DEV_ACCOUNT,
        DEV_KEY,
        "bq",
        "sco",
        "rwdlacup",
        "2099-01-01T00:00:00Z",
    );
    Server { emu, sas }
}

/// Creates the data the table must leave untouched.
pub fn seed(s: &Server) {
    use Auth::*;
    use Svc::*;
    assert_eq!(
        s.send(
            Queue,
            "PUT",
            "/queue1",
            &[("x-ms-meta-owner", "tests")],
            b"",
            &Sas
        )
        .status,
        201
    );
    for t in ["one", "two", "three"] {
        assert_eq!(
            s.send(Queue, "POST", "/queue1/messages", &[], &message(t), &Sas)
                .status,
            201
        );
    }
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1?restype=container",
            &[("x-ms-meta-owner", "tests")],
            b"",
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/b1",
            &[("x-ms-blob-type", "BlockBlob"), ("x-ms-meta-k", "v")],
            b"precious",
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/big",
            &[("x-ms-blob-type", "BlockBlob")],
            &vec![7u8; 100_000],
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/log",
            &[("x-ms-blob-type", "AppendBlob")],
            b"",
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/log?comp=appendblock",
            &[],
            b"entry-1",
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/disk",
            &[
                ("x-ms-blob-type", "PageBlob"),
                ("x-ms-blob-content-length", "4096")
            ],
            b"",
            &Sas
        )
        .status,
        201
    );
    assert_eq!(
        s.send(
            Blob,
            "PUT",
            "/cont1/disk?comp=page",
            &[
                ("x-ms-page-write", "update"),
                ("x-ms-range", "bytes=512-1023")
            ],
            &[9u8; 512],
            &Sas
        )
        .status,
        201
    );
}

/// Everything observable about the seeded data (stored times included, response dates not).
pub fn snapshot(s: &Server) -> Vec<String> {
    use Auth::*;
    use Svc::*;
    let reads: [(Svc, &str, Auth); 12] = [
        (
            Queue,
            "/queue1/messages?peekonly=true&numofmessages=32",
            Sas,
        ),
        (Queue, "/queue1?comp=metadata", Sas),
        (Queue, "/queue1?comp=acl", Key),
        (Queue, "/?comp=list&include=metadata", Sas),
        (Blob, "/?comp=list&include=metadata", Sas),
        (
            Blob,
            "/cont1?restype=container&comp=list&include=metadata,uncommittedblobs",
            Sas,
        ),
        (Blob, "/cont1?restype=container&comp=acl", Key),
        (Blob, "/cont1/b1", Sas),
        (Blob, "/cont1/big", Sas),
        (Blob, "/cont1/log", Sas),
        (Blob, "/cont1/disk", Sas),
        (Blob, "/cont1/disk?comp=pagelist", Sas),
    ];
    reads
        .iter()
        .map(|(svc, path, auth)| {
            let r = s.send(*svc, "GET", path, &[], b"", auth);
            let keep: Vec<&str> = r
                .head
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("x-ms-meta-")
                        || l.starts_with("etag")
                        || l.starts_with("last-modified")
                        || l.starts_with("x-ms-approximate")
                        || l.starts_with("x-ms-blob-public-access")
                        || l.starts_with("content-length")
                        || l.starts_with("x-ms-lease")
                })
                .collect();
            format!(
                "{path} {} {keep:?} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect()
}
