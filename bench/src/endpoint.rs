//! The load generator's HTTP client: one endpoint (ours or Azurite's), its account SAS,
//! and the few queue and blob calls the scenarios make.

use crate::load::run_load;
use anyhow::{bail, Result};
use bytes::Bytes;
use conformance_tests::xml::texts;
use conformance_tests::{account_sas_query, DEV_ACCOUNT, DEV_KEY};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) name: &'static str,
    pub(crate) base: String, // http://127.0.0.1:port/account
    pub(crate) sas: String,
    pub(crate) client: HttpClient,
}

impl Endpoint {
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<(u16, Bytes)> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let uri = format!("{}{}{}{}", self.base, path_and_query, sep, self.sas);
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-ms-version", "2025-11-05")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Put Blob of a block blob at `path`; anything but 201 is an error.
    pub(crate) async fn put_block_blob(&self, path: &str, body: Bytes) -> Result<()> {
        let (status, _) = self
            .call_bytes(Method::PUT, path, &[("x-ms-blob-type", "BlockBlob")], body)
            .await?;
        if status != 201 {
            anyhow::bail!("put blob: {status}");
        }
        Ok(())
    }

    /// A raw request with a byte body and extra headers; returns (status, body length).
    pub(crate) async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, u64)> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}{}{}", self.base, path, sep, self.sas))
            .header("x-ms-version", "2025-11-05");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame?.into_data() {
                len += d.len() as u64;
            }
        }
        Ok((status, len))
    }

    /// `call_bytes` that keeps the answer's body as text.
    pub(crate) async fn call_text(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String)> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let uri = format!("{}{}{}{}", self.base, path, sep, self.sas);
        self.send_text(method, uri, headers, body).await
    }

    /// `call_text` without the SAS (the caller signs the request).
    pub(crate) async fn call_unsigned(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String)> {
        let uri = format!("{}{}", self.base, path);
        self.send_text(method, uri, headers, body).await
    }

    async fn send_text(
        &self,
        method: Method,
        uri: String,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, String)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("x-ms-version", "2025-11-05");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.client.request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// `GET /_emulator/health` (ours only): no signature, no service, no store.
    pub(crate) async fn health(&self) -> Result<u16> {
        let host = self
            .base
            .strip_suffix(&format!("/{DEV_ACCOUNT}"))
            .unwrap_or(&self.base);
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{host}/_emulator/health"))
            .body(Full::new(Bytes::new()))?;
        let resp = self.client.request(req).await?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        Ok(status)
    }

    pub(crate) async fn create_queue(&self, q: &str) -> Result<()> {
        let (s, b) = self.call(Method::PUT, &format!("/{q}"), None).await?;
        if s != 201 && s != 204 {
            bail!(
                "{}: create queue {q}: {s} {}",
                self.name,
                String::from_utf8_lossy(&b)
            );
        }
        Ok(())
    }

    /// Each scenario cleans up after itself, so later ones start from an empty account.
    pub(crate) async fn delete_queue(&self, q: &str) -> Result<()> {
        self.call(Method::DELETE, &format!("/{q}"), None).await?;
        Ok(())
    }

    pub(crate) async fn put(&self, q: &str, text: &str) -> Result<bool> {
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        let (s, _) = self
            .call(Method::POST, &format!("/{q}/messages"), Some(body))
            .await?;
        Ok(s == 201)
    }

    /// Returns (id, pop receipt) pairs.
    pub(crate) async fn get(&self, q: &str, n: usize) -> Result<Vec<(String, String)>> {
        let (s, b) = self
            .call(
                Method::GET,
                &format!("/{q}/messages?numofmessages={n}&visibilitytimeout=60"),
                None,
            )
            .await?;
        if s != 200 {
            bail!("get: {s}");
        }
        let text = String::from_utf8_lossy(&b);
        let ids = texts(&text, "MessageId");
        let receipts = texts(&text, "PopReceipt");
        Ok(ids
            .into_iter()
            .zip(receipts)
            .map(|(i, r)| (i.to_string(), r.to_string()))
            .collect())
    }

    pub(crate) async fn delete(&self, q: &str, id: &str, receipt: &str) -> Result<bool> {
        let receipt = receipt
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let (s, _) = self
            .call(
                Method::DELETE,
                &format!("/{q}/messages/{id}?popreceipt={receipt}"),
                None,
            )
            .await?;
        Ok(s == 204)
    }
}

pub(crate) async fn fill(ep: &Endpoint, q: &str, n: usize) -> Result<()> {
    let ep2 = ep.clone();
    let q2 = q.to_string();
    let done = run_load(64, 3600, n as u64, move |i| {
        let (ep, q) = (ep2.clone(), q2.clone());
        async move { Ok(u64::from(ep.put(&q, &format!("fill-{i}")).await?)) }
    })
    .await;
    if done.ops < n as u64 {
        bail!("{}: filled only {} of {n}", ep.name, done.ops);
    }
    Ok(())
}

/// The port of an `http://127.0.0.1:<port>` base address.
pub(crate) fn port_of(base: &str) -> Result<u16> {
    Ok(base.rsplit(':').next().unwrap_or("0").parse()?)
}

pub(crate) fn endpoint(name: &'static str, port: u16, services: &str) -> Endpoint {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    Endpoint {
        name,
        base: format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}"),
        sas: account_sas_query(
            DEV_ACCOUNT,
            DEV_KEY,
            services,
            "sco",
            "rwdlacup",
            "2099-01-01T00:00:00Z",
        ),
        client,
    }
}
