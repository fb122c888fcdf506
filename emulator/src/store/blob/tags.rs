//! The blob index tag index: one sled entry per (tag, base blob), `T account \0 key \0
//! value \0 container \0 blob` → the blob's tags, so Find Blobs by Tags reads O(log n +
//! matches) entries instead of every record of the account.
//!
//! Kept with the records, inside the same locked step: entries for the new tags are
//! written before the record, entries for tags it no longer has are removed after it. A
//! crash can therefore leave an entry too many (a hit is checked against the record
//! before it is returned), never one too few. Snapshots are not indexed: Find returns
//! base blobs only.

use super::records::BlobRecord;
use super::{internal, keys, BlobName, BlobStore};
use crate::protocol::error::Result;
use crate::protocol::tags::{Op, TagExpr};
use crate::store::codec::{decode, encode};
use base64::Engine;

type Tags = Vec<(String, String)>;

/// A page of Find Blobs by Tags: (container, blob, tags) and the next marker.
pub type TaggedPage = (Vec<(String, String, Tags)>, Option<String>);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl BlobStore {
    /// Before a record with `new` tags is written: their entries.
    pub(super) fn index_tags(&self, n: BlobName<'_>, new: &Tags) -> Result<()> {
        let value = encode(new);
        for (k, v) in new {
            self.core
                .data
                .insert(
                    keys::tag_entry(n.account, k, v, n.container, n.blob),
                    value.as_slice(),
                )
                .map_err(internal)?;
        }
        Ok(())
    }

    /// After the record changed from `old` tags to `new` (None: the base blob is gone):
    /// entries of tags it no longer has are removed.
    pub(super) fn unindex_tags(
        &self,
        n: BlobName<'_>,
        old: &Tags,
        new: Option<&Tags>,
    ) -> Result<()> {
        for (k, v) in old {
            if new.is_some_and(|t| t.iter().any(|(k2, v2)| k2 == k && v2 == v)) {
                continue;
            }
            self.core
                .data
                .remove(keys::tag_entry(n.account, k, v, n.container, n.blob))
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Builds the index from the records (a store written before it existed).
    pub(crate) fn build_tag_index(&self) -> Result<usize> {
        let mut n = 0;
        for item in self.core.data.scan_prefix([crate::store::keys::BLOB]) {
            let (k, v) = item.map_err(internal)?;
            let Some((account, container, blob, snapshot)) = keys::parse_blob_key(&k) else {
                continue;
            };
            if !snapshot.is_empty() {
                continue;
            }
            let record: BlobRecord = decode(&v).map_err(internal)?;
            if record.tags.is_empty()
                || record.deleted.is_some()
                || container.contains(keys::DELETED_CONTAINER)
            {
                continue;
            }
            let name = BlobName {
                account: &account,
                container: &container,
                blob: &blob,
            };
            self.index_tags(name, &record.tags)?;
            n += 1;
        }
        Ok(n)
    }

    /// Find Blobs by Tags: the base blobs of `account` (or of one container) whose tags
    /// match `expr`, from `marker` on, at most `max`. The scan is driven by one of the
    /// expression's comparisons: an equality if it has one (`key = 'v'`), else the first
    /// tag's range; every entry met is then checked against the whole expression.
    pub fn find_by_tags(
        &self,
        account: &str,
        container: Option<&str>,
        expr: &TagExpr,
        marker: Option<&str>,
        max: usize,
    ) -> Result<TaggedPage> {
        let terms = expr.conjuncts();
        let container = container.or_else(|| {
            terms
                .iter()
                .find(|(k, op, _)| *k == "@container" && *op == Op::Eq)
                .map(|(_, _, v)| *v)
        });
        let tag_terms: Vec<_> = terms.iter().filter(|(k, ..)| *k != "@container").collect();
        let Some(&&(key, _, _)) = tag_terms
            .iter()
            .find(|(_, op, _)| *op == Op::Eq)
            .or_else(|| tag_terms.first())
        else {
            return Ok((Vec::new(), None));
        };
        let key_scope = keys::tag_prefix(account, key, None);
        // The driving key's bounds: an equality pins the value, a range narrows it.
        let mut lower: Option<(&str, bool)> = None;
        let mut upper: Option<(&str, bool)> = None;
        for (_, op, v) in terms.iter().filter(|(k, ..)| *k == key) {
            match op {
                Op::Eq => {
                    lower = Some((v, true));
                    upper = Some((v, true));
                }
                Op::Gt => lower = Some((v, false)),
                Op::Ge => lower = Some((v, true)),
                Op::Lt => upper = Some((v, false)),
                Op::Le => upper = Some((v, true)),
                Op::Ne => {}
            }
        }
        let mut start = match lower {
            Some((v, _)) => keys::tag_prefix(account, key, Some(v)),
            None => key_scope.clone(),
        };
        if let Some(m) = marker.and_then(|m| B64.decode(m).ok()) {
            let mut from = key_scope.clone();
            from.extend_from_slice(&m);
            start = start.max(from);
        }
        let mut out = Vec::new();
        for item in self.core.data.range(start..) {
            let (k, v) = item.map_err(internal)?;
            if !k.starts_with(&key_scope) {
                break;
            }
            let tail = &k[key_scope.len()..];
            let Some((value, c, blob)) = keys::parse_tag_tail(tail) else {
                continue;
            };
            if let Some((lo, inclusive)) = lower {
                if value.as_str() < lo || (!inclusive && value == lo) {
                    continue;
                }
            }
            if let Some((hi, inclusive)) = upper {
                if value.as_str() > hi || (!inclusive && value == hi) {
                    break;
                }
            }
            if container.is_some_and(|want| want != c) {
                continue;
            }
            let tags: Tags = decode(&v).map_err(internal)?;
            if !expr.matches(&c, &tags) {
                continue;
            }
            // An entry a crash left behind names tags the blob no longer has.
            let current = self.blob(account, &c, &blob, "")?;
            if current.is_none_or(|r| r.tags != tags) {
                continue;
            }
            if out.len() == max {
                return Ok((out, Some(B64.encode(tail))));
            }
            out.push((c, blob, tags));
        }
        Ok((out, None))
    }
}
