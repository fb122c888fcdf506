//! Unique ids (queues, message sequence numbers, pieces, packs, extent files, ETags): sled's
//! `generate_id` plus a floor kept in the store. A compacted copy of the database
//! (`compact.rs`) is a new sled database whose counter starts again at zero, so the copy
//! gets a floor above every id the old one gave; without it the ids of live queues, pieces
//! and files were handed out again after a compaction (the crash harness found a new pack
//! colliding with an existing file).

/// The floor, in sled's default tree (compaction copies it with every other key).
pub(crate) const FLOOR_KEY: &[u8] = b"id-floor";

/// The floor of a store from before floors: above any id a store could have given, so
/// ids stay unique even in a store compacted (and so restarted from zero) before this.
const LEGACY_FLOOR: u64 = 1 << 48;

/// The floor `db` draws above, and records it if missing (`fresh`: a new database).
pub(crate) fn open(db: &sled::Db, fresh: bool) -> sled::Result<u64> {
    if let Some(f) = stored(db)? {
        return Ok(f);
    }
    let floor = if fresh { 0 } else { LEGACY_FLOOR };
    db.insert(FLOOR_KEY, &floor.to_be_bytes())?;
    Ok(floor)
}

/// A new id: above every id drawn from this store before, across restarts, crashes and
/// compactions.
pub(crate) fn next(db: &sled::Db, floor: u64) -> sled::Result<u64> {
    Ok(floor + db.generate_id()?)
}

/// The floor for a compacted copy of `db`: above every id `db` has given.
pub(crate) fn floor_after(db: &sled::Db) -> sled::Result<u64> {
    let floor = stored(db)?.unwrap_or(LEGACY_FLOOR);
    Ok(next(db, floor)? + 1)
}

fn stored(db: &sled::Db) -> sled::Result<Option<u64>> {
    Ok(db
        .get(FLOOR_KEY)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
}
