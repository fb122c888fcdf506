//! Background work: expired messages swept, deleted queues' keys purged.

use super::*;

impl QueueStore {
    /// Removes expired messages. A quick sweep walks each queue in insertion order and stops
    /// at the first live message (right when TTLs are uniform, the common case); a full sweep
    /// looks at every message. Returns how many were removed.
    pub fn sweep_expired(&self, full: bool) -> Result<usize> {
        let now = self.core.clock.now_ms();
        let mut removed = 0;
        for state in self.queues_snapshot() {
            let mut from = 0u64;
            loop {
                let inner = state.inner.write();
                if inner.deleted {
                    break;
                }
                let qid = inner.record.id;
                let mut seen = 0;
                let mut stop = false;
                for item in self
                    .core
                    .data
                    .range(keys::message(qid, from)..keys::message(qid, u64::MAX))
                {
                    let (k, v) = item.map_err(internal)?;
                    let Some(seq) = keys::parse_message(&k) else {
                        continue;
                    };
                    from = seq.saturating_add(1);
                    let m: MessageRecord = decode(&v).map_err(internal)?;
                    if m.expires_ms <= now {
                        self.remove_message(&state, qid, seq, m.visible_ms)?;
                        removed += 1;
                    } else if !full {
                        stop = true;
                        break;
                    }
                    seen += 1;
                    if seen == SWEEP_CHUNK {
                        break;
                    }
                }
                drop(inner);
                if stop || seen < SWEEP_CHUNK {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Removes the messages of deleted and cleared queues, a chunk at a time.
    /// At most `budget` keys per call, so a big purge yields to foreground requests (the
    /// housekeeping tick calls again a second later).
    pub fn purge_orphans(&self, budget: usize) -> Result<usize> {
        let mut removed = 0;
        let mut spent = 0;
        let pending: Vec<u64> = self
            .core
            .data
            .scan_prefix([keys::PURGE])
            .keys()
            .filter_map(|k| k.ok().and_then(|k| keys::parse_qid_tail(&k)))
            .collect();
        for qid in pending {
            loop {
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for k in self
                    .core
                    .data
                    .scan_prefix(keys::qid_prefix(keys::MESSAGE, qid))
                    .keys()
                    .take(SWEEP_CHUNK)
                {
                    batch.remove(k.map_err(internal)?);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                self.core.data.apply_batch(batch).map_err(internal)?;
                removed += n;
                spent += n;
                if spent >= budget {
                    return Ok(removed);
                }
            }
            self.remove(keys::purge(qid))?;
        }
        Ok(removed)
    }
}
