//! Recovery of a [`LogStore`]: replaying the log at open, and what to do with a damaged
//! tail (refuse it, keep it out and cut it before the first write, or salvage). The rules
//! are documented on [`LogStore`](LogStore#recovery).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::LogStore;
use crate::store::StoreError;
use crate::store::encoded::EncodedGraph;
use crate::store::frames::{self, Fault};
use crate::store::fsutil::io_err;
use crate::store::quarantine;

impl LogStore {
    /// Replays the log; sets `end` and `frames`, and what to do with a damaged tail.
    pub(super) fn replay(&mut self, file: &File) -> Result<EncodedGraph, StoreError> {
        let len = file
            .metadata()
            .map_err(io_err("reading metadata of", &self.path))?
            .len();
        let replayed = frames::replay_encoded(file, len, &self.path)?;
        self.end = replayed.end;
        self.frames = replayed.frames;
        let Some(fault) = replayed.fault else {
            return Ok(replayed.graph);
        };
        self.cut_bytes = fault.bytes;
        if fault.torn && !self.options.salvage {
            let keep = quarantine::free_path(&self.path, fault.offset);
            tracing::warn!(
                path = %self.path.display(),
                offset = fault.offset,
                cut_bytes = fault.bytes,
                frames_kept = self.frames,
                "store log {}: its last frame is torn ({} bytes at byte {}: {}), what a crash \
                 mid-write leaves; the {} whole frames before it are kept. The torn bytes are \
                 cut before the next write and kept in {}",
                self.path.display(),
                fault.bytes,
                fault.offset,
                fault.reason,
                self.frames,
                keep.display(),
            );
            self.pending_cut = Some(fault);
            return Ok(replayed.graph);
        }
        if !self.options.salvage {
            return Err(self.corrupt(fault.offset, self.damage_detail(&fault)));
        }
        // Salvage: keep the bytes from the damage on beside the log, then cut.
        self.cut_tail(file, &fault)?;
        tracing::warn!(
            path = %self.path.display(),
            offset = fault.offset,
            cut_bytes = fault.bytes,
            frames_kept = self.frames,
            "store log {}: salvaged: kept the {} frames before byte {}; the {} bytes from there \
             on ({}) were cut and are kept in {}",
            self.path.display(),
            self.frames,
            fault.offset,
            fault.bytes,
            fault.reason,
            self.quarantined
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
        );
        Ok(replayed.graph)
    }

    /// Why a damaged log is refused, and how to salvage it.
    fn damage_detail(&self, fault: &Fault) -> String {
        let what = match fault.next_valid {
            Some(next) => format!(
                "{}, yet a valid frame follows at byte {next}: this is damage in the middle of \
                 the log, not a torn write",
                fault.reason
            ),
            None => format!(
                "{}, in a frame written whole: the disk changed a commit that was written \
                 (perhaps acknowledged), which is not a torn write",
                fault.reason
            ),
        };
        format!(
            "{what}. Salvaging keeps the {} frames before byte {} and cuts the {} bytes from \
             there on, keeping them in a quarantine file beside the log (open with \
             `LogOptions {{ salvage: true, .. }}`)",
            self.frames, fault.offset, fault.bytes
        )
    }

    /// Copies the bytes from `fault.offset` on to a quarantine file, then cuts the log
    /// there.
    fn cut_tail(&mut self, file: &File, fault: &Fault) -> Result<(), StoreError> {
        let tail = frames::read_tail(file, fault.offset, fault.offset + fault.bytes)
            .map_err(io_err("reading", &self.path))?;
        let keep = quarantine::free_path(&self.path, fault.offset);
        quarantine::keep(&keep, &tail)?;
        file.set_len(fault.offset)
            .and_then(|()| file.sync_data())
            .map_err(io_err("cutting the damaged tail of", &self.path))?;
        self.quarantined = Some(keep);
        Ok(())
    }

    /// Cuts a torn tail found at open (keeping it in quarantine), before the first write.
    pub(super) fn settle_tail(&mut self) -> Result<(), StoreError> {
        let Some(fault) = self.pending_cut.take() else {
            return Ok(());
        };
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let cut = self.cut_tail(&file, &fault);
        self.file = Some(file);
        if let Err(e) = cut {
            self.pending_cut = Some(fault);
            return Err(e);
        }
        tracing::warn!(
            path = %self.path.display(),
            "store log {}: cut its torn tail ({} bytes at byte {}); the bytes are kept in {}",
            self.path.display(),
            fault.bytes,
            fault.offset,
            self.quarantined
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
        );
        Ok(())
    }

    /// Where the bytes cut from this log were kept, once cut.
    pub fn quarantined(&self) -> Option<&Path> {
        self.quarantined.as_deref()
    }

    /// Where the bytes cut from this log are (or, for a torn tail not cut yet, will be)
    /// kept; `None` when nothing was found to cut.
    pub fn cut_kept_in(&self) -> Option<PathBuf> {
        match (&self.quarantined, &self.pending_cut) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(quarantine::free_path(&self.path, f.offset)),
            (None, None) => None,
        }
    }

    /// A torn tail found at open and not cut yet (where it starts, how long it is).
    pub fn torn_tail(&self) -> Option<(u64, u64)> {
        self.pending_cut.as_ref().map(|f| (f.offset, f.bytes))
    }
}
