//! The image job as it travels: the queue message the app sends (a claim check naming the
//! uploaded blob, never the image itself) and the job record both sides read and write.
//!
//! The record lives as the metadata of a small blob `jobs/<id>` (its body carries the same
//! fields as JSON for people), so one List Blobs call with `include=metadata` renders the
//! whole gallery. Job ids sort newest first, so the first page of that listing is the most
//! recent uploads.

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Where uploaded originals go.
pub const UPLOADS: &str = "uploads";
/// Where the worker writes thumbnails and web-size copies.
pub const THUMBNAILS: &str = "thumbnails";
/// One record blob per job.
pub const JOBS: &str = "jobs";
/// The default work queue; its poison queue is `<queue>-poison`.
pub const DEFAULT_QUEUE: &str = "images";

pub fn poison_queue(queue: &str) -> String {
    format!("{queue}-poison")
}

/// A job id: 12 hex digits of (2^48-1 - Unix milliseconds), so ids sort newest first, then 8
/// random hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

const MAX_MILLIS: u64 = (1 << 48) - 1;

impl JobId {
    pub fn new(now: DateTime<Utc>) -> JobId {
        let millis = u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .min(MAX_MILLIS);
        JobId(format!(
            "{:012x}{:08x}",
            MAX_MILLIS - millis,
            rand::random::<u32>()
        ))
    }

    pub fn parse(s: &str) -> Result<JobId, JobFormatError> {
        if s.len() == 20 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(JobId(s.to_string()))
        } else {
            Err(JobFormatError::BadId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the id was minted.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        let inverted = u64::from_str_radix(self.0.get(..12)?, 16).ok()?;
        DateTime::from_timestamp_millis(i64::try_from(MAX_MILLIS - inverted).ok()?)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = JobFormatError;
    fn try_from(s: String) -> Result<JobId, JobFormatError> {
        JobId::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFormatError {
    #[error("job id must be 20 lowercase hex digits")]
    BadId,
    #[error("job message is not valid JSON for version 1: {0}")]
    Json(String),
    #[error("job message has unsupported version {0}")]
    Version(u32),
    #[error("job message names an invalid blob")]
    BadBlob,
    #[error("job record metadata lacks '{0}'")]
    Missing(&'static str),
    #[error("job record metadata has an invalid '{0}'")]
    Invalid(&'static str),
}

/// The queue message: a claim check for an uploaded image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub v: u32,
    pub id: JobId,
    pub container: String,
    pub blob: String,
}

impl JobMessage {
    pub const VERSION: u32 = 1;

    pub fn new(id: JobId, blob: String) -> JobMessage {
        JobMessage {
            v: Self::VERSION,
            id,
            container: UPLOADS.to_string(),
            blob,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(text: &str) -> Result<JobMessage, JobFormatError> {
        let m: JobMessage =
            serde_json::from_str(text).map_err(|e| JobFormatError::Json(e.to_string()))?;
        if m.v != Self::VERSION {
            return Err(JobFormatError::Version(m.v));
        }
        if m.container.is_empty()
            || m.blob.is_empty()
            || m.blob.len() > 1024
            || m.blob.chars().any(char::is_control)
        {
            return Err(JobFormatError::BadBlob);
        }
        Ok(m)
    }
}

/// A message of the work queue when jobs come from storage events (`--job-source events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventJob {
    Job(JobMessage),
    /// An event that is no job (another type, container or blob name): why.
    Skip(String),
}

impl JobMessage {
    /// The job a `Microsoft.Storage.BlobCreated` event (Event Grid schema, as Event Grid
    /// delivers it to a queue: base64 JSON, or plain JSON) of an upload announces. The
    /// job id is the original's name without its extension, as the app names it.
    pub fn from_blob_event(text: &str) -> Result<EventJob, JobFormatError> {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let json = decoded.as_deref().unwrap_or(text);
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| JobFormatError::Json(e.to_string()))?;
        // Event Grid may deliver an array of events; a queue destination gets one.
        let event = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
        let ty = event["eventType"].as_str().unwrap_or_default();
        if ty != "Microsoft.Storage.BlobCreated" {
            return Ok(EventJob::Skip(format!("a {ty} event")));
        }
        let subject = event["subject"].as_str().unwrap_or_default();
        let Some((container, blob)) = subject
            .strip_prefix("/blobServices/default/containers/")
            .and_then(|r| r.split_once("/blobs/"))
        else {
            return Err(JobFormatError::BadBlob);
        };
        if container != UPLOADS {
            return Ok(EventJob::Skip(format!("a blob of container {container}")));
        }
        let stem = blob.rsplit_once('.').map_or(blob, |(s, _)| s);
        let Ok(id) = JobId::parse(stem) else {
            return Ok(EventJob::Skip(format!(
                "{blob} is not an upload of the app"
            )));
        };
        Ok(EventJob::Job(JobMessage::new(id, blob.to_string())))
    }
}

/// What the poison queue receives: the original message and why it was given up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonMessage {
    pub message: String,
    pub reason: String,
    pub dequeue_count: u64,
    pub failed_at: String,
}

impl PoisonMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Processing,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Processing => "processing",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "processing" => JobState::Processing,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// One produced image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub blob: String,
    pub width: u32,
    pub height: u32,
}

/// The job record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub state: JobState,
    /// The uploaded original in [`UPLOADS`].
    pub original: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub reason: Option<String>,
    pub attempts: u64,
    pub thumbnail: Option<Output>,
    pub web: Option<Output>,
    pub updated: String,
    pub took_ms: Option<u64>,
}

// Metadata values must be printable ASCII; '%' is escaped so decoding is unambiguous.
const META_VALUE: &AsciiSet = &CONTROLS.add(b'%');

fn meta_enc(s: &str) -> String {
    utf8_percent_encode(s, META_VALUE).to_string()
}

fn meta_dec(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

pub fn now_rfc3339(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl JobRecord {
    pub fn queued(
        id: JobId,
        original: String,
        file_name: String,
        content_type: String,
        size: u64,
        now: DateTime<Utc>,
    ) -> JobRecord {
        JobRecord {
            id,
            state: JobState::Queued,
            original,
            file_name,
            content_type,
            size,
            reason: None,
            attempts: 0,
            thumbnail: None,
            web: None,
            updated: now_rfc3339(now),
            took_ms: None,
        }
    }

    pub fn to_metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("state".into(), self.state.as_str().into());
        m.insert("original".into(), meta_enc(&self.original));
        m.insert("filename".into(), meta_enc(&self.file_name));
        m.insert("contenttype".into(), meta_enc(&self.content_type));
        m.insert("size".into(), self.size.to_string());
        m.insert("attempts".into(), self.attempts.to_string());
        m.insert("updated".into(), self.updated.clone());
        if let Some(r) = &self.reason {
            m.insert("reason".into(), meta_enc(r));
        }
        if let Some(ms) = self.took_ms {
            m.insert("tookms".into(), ms.to_string());
        }
        for (prefix, out) in [("thumb", &self.thumbnail), ("web", &self.web)] {
            if let Some(o) = out {
                m.insert(prefix.to_string(), meta_enc(&o.blob));
                m.insert(format!("{prefix}w"), o.width.to_string());
                m.insert(format!("{prefix}h"), o.height.to_string());
            }
        }
        m
    }

    /// Reads a record back from blob metadata. Names are matched case-insensitively because
    /// services may return metadata names in any case.
    pub fn from_metadata(
        id: JobId,
        meta: &HashMap<String, String>,
    ) -> Result<JobRecord, JobFormatError> {
        let lower: HashMap<String, &str> = meta
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        let get = |k: &'static str| lower.get(k).copied();
        let req = |k: &'static str| get(k).ok_or(JobFormatError::Missing(k));
        let num = |k: &'static str| -> Result<u64, JobFormatError> {
            req(k)?.parse().map_err(|_| JobFormatError::Invalid(k))
        };
        let output = |p: &'static str, w: &'static str, h: &'static str| match get(p) {
            None => Ok(None),
            Some(b) => Ok::<_, JobFormatError>(Some(Output {
                blob: meta_dec(b),
                width: u32::try_from(num(w)?).map_err(|_| JobFormatError::Invalid(w))?,
                height: u32::try_from(num(h)?).map_err(|_| JobFormatError::Invalid(h))?,
            })),
        };
        Ok(JobRecord {
            id,
            state: JobState::parse(req("state")?).ok_or(JobFormatError::Invalid("state"))?,
            original: meta_dec(req("original")?),
            file_name: meta_dec(req("filename")?),
            content_type: meta_dec(req("contenttype")?),
            size: num("size")?,
            reason: get("reason").map(meta_dec),
            attempts: num("attempts")?,
            thumbnail: output("thumb", "thumbw", "thumbh")?,
            web: output("web", "webw", "webh")?,
            updated: req("updated")?.to_string(),
            took_ms: get("tookms").and_then(|v| v.parse().ok()),
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn blob_created_events_of_uploads_are_jobs_and_others_are_skipped() {
        use base64::Engine;
        let event = |ty: &str, subject: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!(
                r#"{{"topic":"t","subject":"{subject}","eventType":"{ty}","id":"1","data":{{"api":"PutBlob"}},"dataVersion":"","metadataVersion":"1"}}"#
            ))
        };
        let id = "0000000000010000abcd";
        let job = JobMessage::from_blob_event(&event(
            "Microsoft.Storage.BlobCreated",
            &format!("/blobServices/default/containers/uploads/blobs/{id}.png"),
        ))
        .unwrap();
        assert_eq!(
            job,
            EventJob::Job(JobMessage::new(
                JobId::parse(id).unwrap(),
                format!("{id}.png")
            ))
        );
        for (ty, subject) in [
            (
                "Microsoft.Storage.BlobDeleted",
                format!("/blobServices/default/containers/uploads/blobs/{id}.png"),
            ),
            (
                "Microsoft.Storage.BlobCreated",
                format!("/blobServices/default/containers/thumbnails/blobs/{id}/web-800.jpg"),
            ),
            (
                "Microsoft.Storage.BlobCreated",
                "/blobServices/default/containers/uploads/blobs/notes.txt".into(),
            ),
        ] {
            assert!(
                matches!(
                    JobMessage::from_blob_event(&event(ty, &subject)).unwrap(),
                    EventJob::Skip(_)
                ),
                "{ty} {subject}"
            );
        }
        assert!(JobMessage::from_blob_event("not json").is_err());
    }

    #[test]
    fn ids_sort_newest_first_and_carry_their_time() {
        let t1 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t2 = t1 + chrono::Duration::milliseconds(1);
        let (a, b) = (JobId::new(t1), JobId::new(t2));
        assert!(b < a, "{b} sorts before {a}");
        assert_eq!(a.as_str().len(), 20);
        assert_eq!(a.created(), Some(t1));
        assert_eq!(JobId::parse(a.as_str()), Ok(a));
        for bad in [
            "",
            "xyz",
            "ABCDEF0123456789ABCD",
            "0123456789abcdef012",
            "../0123456789abcdef0",
        ] {
            assert_eq!(JobId::parse(bad), Err(JobFormatError::BadId), "{bad}");
        }
    }

    #[test]
    fn message_round_trip_and_exact_wire_form() {
        let id = JobId::parse("0000000000010000abcd").unwrap();
        let m = JobMessage::new(id, "0000000000010000abcd.png".into());
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"id":"0000000000010000abcd","container":"uploads","blob":"0000000000010000abcd.png"}"#
        );
        assert_eq!(JobMessage::parse(&json), Ok(m));
    }

    #[test]
    fn malformed_messages_are_rejected() {
        for (text, want) in [
            ("not json", "Json"),
            ("{}", "Json"),
            (
                r#"{"v":2,"id":"0000000000010000abcd","container":"uploads","blob":"x"}"#,
                "Version",
            ),
            (
                r#"{"v":1,"id":"nope","container":"uploads","blob":"x"}"#,
                "Json",
            ),
            (
                r#"{"v":1,"id":"0000000000010000abcd","container":"uploads","blob":""}"#,
                "BadBlob",
            ),
            (
                r#"{"v":1,"id":"0000000000010000abcd","container":"uploads","blob":"x","image":"AAAA"}"#,
                "Json",
            ),
        ] {
            let e = JobMessage::parse(text).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{text}: {e:?}");
        }
    }

    #[test]
    fn record_survives_metadata_with_unicode_and_percent() {
        let id = JobId::parse("0000000000010000abcd").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut r = JobRecord::queued(
            id.clone(),
            "0000000000010000abcd.jpg".into(),
            "Été 100% «plage».jpg".into(),
            "image/jpeg".into(),
            1234,
            t,
        );
        assert_eq!(
            JobRecord::from_metadata(id.clone(), &r.to_metadata()),
            Ok(r.clone())
        );
        r.state = JobState::Done;
        r.attempts = 2;
        r.took_ms = Some(41);
        r.thumbnail = Some(Output {
            blob: "x/thumb.jpg".into(),
            width: 256,
            height: 192,
        });
        r.web = Some(Output {
            blob: "x/web.jpg".into(),
            width: 1024,
            height: 768,
        });
        r.reason = Some("line\nbreak".into());
        let meta = r.to_metadata();
        assert!(
            meta.values()
                .all(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b))),
            "{meta:?}"
        );
        // Services may hand names back in another case.
        let upper: HashMap<String, String> = meta
            .into_iter()
            .map(|(k, v)| (k.to_uppercase(), v))
            .collect();
        assert_eq!(JobRecord::from_metadata(id.clone(), &upper), Ok(r));
        let mut partial = HashMap::new();
        partial.insert("state".to_string(), "done".to_string());
        assert_eq!(
            JobRecord::from_metadata(id, &partial),
            Err(JobFormatError::Missing("original"))
        );
    }
}
