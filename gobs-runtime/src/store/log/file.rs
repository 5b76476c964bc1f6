//! Rewriting a [`LogStore`]'s file whole: a compaction, a snapshot, the first commit.
//! A new file is written beside the log, fsynced, and renamed over it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::LogStore;
use crate::store::StoreError;
use crate::store::encoded::{BIN32_LEN, EncodedGraph};
use crate::store::frames::{ARRAY3, KIND_COMPACT, MAGIC, TIME_LEN, now_ms, time_bytes};
use crate::store::fsutil::io_err;
use crate::store::sync::Syncer;

impl LogStore {
    /// Replaces the log with a fresh file holding `graph` as one snapshot frame.
    ///
    /// A failure before the rename leaves the old log in use (and the store usable); a
    /// failure after it poisons the store.
    pub(super) fn replace_file(&mut self, graph: &EncodedGraph) -> Result<(), StoreError> {
        // The old file goes, torn tail and all: keep that tail first.
        self.settle_tail()?;
        let written = write_snapshot_file(&self.tmp, graph).and_then(|(file, end)| {
            fs::rename(&self.tmp, &self.path).map_err(io_err("renaming into place", &self.path))?;
            Ok((file, end))
        });
        let (file, end) = match written {
            Ok(x) => x,
            Err(e) => {
                let _ = fs::remove_file(&self.tmp);
                return Err(e);
            }
        };
        // The new file is in place: from here on, a failure leaves this handle unsure.
        let syncer = Syncer::new(self.options.durability, &file, &self.path, end);
        let syncer = self.poison(syncer)?;
        self.file = Some(file);
        let old = self.syncer.replace(syncer);
        self.end = end;
        self.frames = 1;
        self.compactions += 1;
        self.compact_retry_at = 0;
        let synced = crate::store::fsutil::sync_dir(&self.dir, &self.dir_path);
        // Commits written to the old file and not fsynced yet are in the new one.
        if let Some(old) = old {
            old.replaced(synced.as_ref().map(|_| ()));
        }
        self.poison(synced)
    }

    /// Compacts when the log has grown past its bound. A commit is already in the log when
    /// this runs, so a failure is only logged.
    pub(super) fn maybe_compact(&mut self) {
        let live = self.live_bytes();
        if self.end <= self.options.compact_bound(live) || self.end < self.compact_retry_at {
            return;
        }
        let graph = std::mem::take(&mut self.graph);
        let before = self.end;
        let result = self.replace_file(&graph);
        self.graph = graph;
        match result {
            Ok(()) => tracing::debug!(
                path = %self.path.display(),
                before,
                after = self.end,
                "compacted store log"
            ),
            Err(e) => {
                self.compact_retry_at = before + live.max(self.options.compact_min_bytes);
                tracing::warn!(error = %e, "compacting a store log failed; it keeps growing until a later compaction works");
            }
        }
    }
}

/// Writes a fresh log holding `graph` to `tmp` and fsyncs it; returns the file (positioned
/// at its end) and its length.
pub(crate) fn write_snapshot_file(
    tmp: &Path,
    graph: &EncodedGraph,
) -> Result<(File, u64), StoreError> {
    let body_len = graph.body_len();
    let too_big = |_| StoreError::Encode {
        path: tmp.to_path_buf(),
        what: "the graph",
        detail: format!(
            "a snapshot of {body_len} bytes exceeds the 4 GiB frame limit of the log format"
        ),
    };
    let body_len32 = u32::try_from(body_len).map_err(too_big)?;
    let payload_len = u32::try_from(2 + BIN32_LEN + body_len + TIME_LEN as u64).map_err(too_big)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    let mut crc = crc32fast::Hasher::new();
    let written = (|| -> io::Result<u64> {
        let mut w = BufWriter::with_capacity(1 << 16, &mut file);
        w.write_all(MAGIC)?;
        w.write_all(&payload_len.to_le_bytes())?;
        w.write_all(&[0; 4])?; // the CRC, written once known
        let [a, b, c, d] = body_len32.to_be_bytes();
        let tag = [ARRAY3, KIND_COMPACT, 0xc6, a, b, c, d];
        w.write_all(&tag)?;
        crc.update(&tag);
        graph.write_body(&mut w, &mut crc)?;
        let time = time_bytes(now_ms());
        w.write_all(&time)?;
        crc.update(&time);
        w.flush()?;
        drop(w);
        file.seek(SeekFrom::Start(MAGIC.len() as u64 + 4))?;
        file.write_all(&crc.finalize().to_le_bytes())?;
        file.seek(SeekFrom::End(0))
    })();
    let end = written.map_err(io_err("writing", tmp))?;
    crate::store::fault::sync_data(&file, tmp).map_err(io_err("syncing", tmp))?;
    Ok((file, end))
}
