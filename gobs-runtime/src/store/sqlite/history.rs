//! A SQLite store's kept journal: what going back to an earlier commit needs.
//!
//! Every registry commit adds a row to `history_commits` (its number and time) inside its
//! own transaction. Triggers on the data tables (`vats`, `types`, `names`, `actors`) write,
//! before each row changes, the row's former image (or that it was absent) to
//! `history_undo`, tagged with that commit's number. Going back to commit N puts every row
//! changed after N back to its image before the first such change, in one transaction: the
//! state acknowledged at N, exactly.
//!
//! The window is the number of commits a rewind reaches back: the meta key
//! `history_window` ([`DEFAULT_WINDOW`] when unset, 0 keeps no journal), set with
//! [`SqliteStore::set_history_window`]. Older commits' undo rows are deleted at each commit.
//! The triggers are TEMP (this connection's only), so a program that does not know the
//! journal writes the tables as before; the journal then misses its writes, and a rewind
//! leaves them alone.
//!
//! ```sql
//! CREATE TABLE history_commits (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL); -- ms since 1970
//! CREATE TABLE history_undo (commit_no INTEGER NOT NULL, tbl INTEGER NOT NULL, -- 0 vats,
//!     k1 INTEGER NOT NULL, k2 INTEGER NOT NULL,     -- 1 types, 2 names, 3 actors; the key
//!     present INTEGER NOT NULL,                     -- 0: the row was absent
//!     a, b, c, d,                                   -- its other columns, in table order
//!     PRIMARY KEY (commit_no, tbl, k1, k2)) WITHOUT ROWID;
//! ```

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::inspect::Commit;
use crate::store::StoreError;
use crate::store::fsutil::{io_err, parent_dir};
use crate::store::rewind::Rewound;

/// The commits a rewind reaches back when the database sets no window.
pub const DEFAULT_WINDOW: u64 = 1000;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS history_commits (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history_undo (commit_no INTEGER NOT NULL, tbl INTEGER NOT NULL,
    k1 INTEGER NOT NULL, k2 INTEGER NOT NULL, present INTEGER NOT NULL, a, b, c, d,
    PRIMARY KEY (commit_no, tbl, k1, k2)) WITHOUT ROWID;
";

/// A journaled table: its name, key columns (one or two) and other columns (up to four).
struct Journaled {
    table: &'static str,
    keys: &'static [&'static str],
    values: &'static [&'static str],
    /// Its inserts name the key (`INSERT OR REPLACE`): the row they may replace is
    /// journaled. Otherwise the key is a fresh rowid, absent before.
    keyed_inserts: bool,
}

const JOURNALED: [Journaled; 4] = [
    Journaled {
        table: "vats",
        keys: &["id"],
        values: &["name", "saved", "roots", "next_id"],
        keyed_inserts: false,
    },
    Journaled {
        table: "types",
        keys: &["id"],
        values: &["name"],
        keyed_inserts: false,
    },
    Journaled {
        table: "names",
        keys: &["id"],
        values: &["name"],
        keyed_inserts: true,
    },
    Journaled {
        table: "actors",
        keys: &["vat", "id"],
        values: &["type", "version", "args"],
        keyed_inserts: true,
    },
];

const SLOTS: [&str; 4] = ["a", "b", "c", "d"];

/// The tag of `actors` in [`JOURNALED`].
const ACTORS: i64 = 3;

impl Journaled {
    /// The key's two columns of `row` (`NEW`, `OLD`, `o`): a one-key table's second is 0.
    fn key_of(&self, row: &str) -> (String, String) {
        let k2 = self
            .keys
            .get(1)
            .map_or_else(|| "0".to_string(), |k| format!("{row}.{k}"));
        (format!("{row}.{}", self.keys[0]), k2)
    }

    /// The trigger statements that journal this table's changes: the first change of a
    /// row in a commit keeps its image; later ones in the same commit add nothing.
    fn triggers(&self, tag: usize) -> String {
        let t = self.table;
        let commit = "(SELECT max(seq) FROM history_commits)";
        let head = format!(
            "INSERT INTO history_undo (commit_no, tbl, k1, k2, present, {}) SELECT \
             {commit}, {tag}",
            SLOTS[..self.values.len()].join(", ")
        );
        let first = |row: &str| {
            let (k1, k2) = self.key_of(row);
            format!(
                "NOT EXISTS (SELECT 1 FROM history_undo WHERE commit_no = {commit} AND \
                 tbl = {tag} AND k1 = {k1} AND k2 = {k2})"
            )
        };
        let values_of = |row: &str| -> Vec<String> {
            self.values.iter().map(|v| format!("{row}.{v}")).collect()
        };
        let (old_k1, old_k2) = self.key_of("OLD");
        let old = format!(
            "{head}, {old_k1}, {old_k2}, 1, {} WHERE {};",
            values_of("OLD").join(", "),
            first("OLD")
        );
        let (new_k1, new_k2) = self.key_of("NEW");
        let insert = if self.keyed_inserts {
            let on: Vec<String> = self
                .keys
                .iter()
                .map(|k| format!("o.{k} = NEW.{k}"))
                .collect();
            // A row replaced by the same values changes nothing to undo.
            let same: Vec<String> = self
                .values
                .iter()
                .map(|v| format!("o.{v} IS NEW.{v}"))
                .collect();
            format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS gobs_undo_{t}_insert BEFORE INSERT ON {t} \
                 BEGIN {head}, {new_k1}, {new_k2}, o.{k} IS NOT NULL, {} FROM (SELECT 1) \
                 LEFT JOIN {t} o ON {} WHERE (o.{k} IS NULL OR NOT ({})) AND {}; END;",
                values_of("o").join(", "),
                on.join(" AND "),
                same.join(" AND "),
                first("NEW"),
                k = self.keys[0],
            )
        } else {
            // A fresh rowid: NEW's key is only known after the insert.
            format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS gobs_undo_{t}_insert AFTER INSERT ON {t} \
                 BEGIN {head}, {new_k1}, {new_k2}, 0, {} WHERE {}; END;",
                vec!["NULL"; self.values.len()].join(", "),
                first("NEW")
            )
        };
        format!(
            "{insert}
             CREATE TEMP TRIGGER IF NOT EXISTS gobs_undo_{t}_update BEFORE UPDATE ON {t} \
             BEGIN {old} END;
             CREATE TEMP TRIGGER IF NOT EXISTS gobs_undo_{t}_delete BEFORE DELETE ON {t} \
             BEGIN {old} END;"
        )
    }

    fn drop_triggers(&self) -> String {
        ["insert", "update", "delete"]
            .iter()
            .map(|op| format!("DROP TRIGGER IF EXISTS temp.gobs_undo_{}_{op};", self.table))
            .collect()
    }
}

fn sqlite_err<'a>(path: &'a Path, op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The journal's window as the database sets it.
fn window(conn: &Connection, path: &Path) -> Result<u64, StoreError> {
    let set: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'history_window'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err(path, "reading"))?;
    match set {
        None => Ok(DEFAULT_WINDOW),
        Some(s) => s.parse().map_err(|_| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail: format!("its meta key history_window is {s:?}, not a number of commits"),
        }),
    }
}

/// Creates the journal's tables, and its triggers on `conn` when the window is not 0.
/// Called when the store opens, before any commit.
pub(super) fn install(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.execute_batch(TABLES)
        .map_err(sqlite_err(path, "creating the history tables of"))?;
    set_triggers(conn, path, window(conn, path)? > 0)
}

fn set_triggers(conn: &Connection, path: &Path, on: bool) -> Result<(), StoreError> {
    let sql: String = JOURNALED
        .iter()
        .enumerate()
        .map(|(tag, j)| {
            if on {
                j.triggers(tag)
            } else {
                j.drop_triggers()
            }
        })
        .collect();
    conn.execute_batch(&sql)
        .map_err(sqlite_err(path, "setting the history triggers of"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Numbers the commit whose transaction `conn` is in, and forgets the undo rows of commits
/// that fell out of the window. Called first in every registry commit's transaction.
pub(super) fn begin_commit(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let window = window(conn, path)?;
    if window == 0 {
        return Ok(());
    }
    let err = sqlite_err(path, "journaling a commit in");
    let seq: i64 = conn
        .prepare_cached("INSERT INTO history_commits (time) VALUES (?1) RETURNING seq")
        .and_then(|mut s| s.query_row([now_ms()], |r| r.get(0)))
        .map_err(&err)?;
    // The oldest commit a rewind reaches: its own undo rows are no longer needed.
    let base = seq.saturating_sub(i64::try_from(window).unwrap_or(i64::MAX));
    conn.prepare_cached("DELETE FROM history_commits WHERE seq < ?1")
        .and_then(|mut s| s.execute([base]))
        .map_err(&err)?;
    conn.prepare_cached("DELETE FROM history_undo WHERE commit_no <= ?1")
        .and_then(|mut s| s.execute([base]))
        .map_err(&err)?;
    Ok(())
}

/// One undo row: a table row's image before a commit changed it.
struct Undo {
    /// The table's place in [`JOURNALED`].
    tag: usize,
    key: (i64, i64),
    present: bool,
    values: [Value; 4],
}

impl SqliteStore {
    /// How many commits back a rewind reaches: the database's meta key `history_window`,
    /// 1000 when unset.
    pub fn history_window(&self) -> Result<u64, StoreError> {
        window(&self.conn, &self.path)
    }

    /// Sets how many commits back a rewind reaches; 0 keeps no journal (and forgets the
    /// one kept). A smaller window takes effect at the next commit.
    pub fn set_history_window(&mut self, commits: u64) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path, "setting the history window of");
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('history_window', ?1)",
                [commits.to_string()],
            )
            .map_err(&err)?;
        if commits == 0 {
            self.conn
                .execute_batch("DELETE FROM history_undo; DELETE FROM history_commits;")
                .map_err(&err)?;
        }
        set_triggers(&self.conn, &self.path, commits > 0)
    }

    /// The commits a rewind can go back to, oldest first: the first is the window's base
    /// (its own changes can no longer be undone). `bytes` is what the journal keeps to
    /// undo a commit, `upserts` the actor rows it changed (written or removed), `offset`
    /// and `removes` 0 (a database has no frames, and the journal keeps what a row was,
    /// not what the commit made of it).
    pub fn history(&self) -> Result<Vec<Commit>, StoreError> {
        let err = sqlite_err(&self.path, "reading the history of");
        let vat_names: HashMap<i64, String> = self
            .id_names::<i64>("vats")?
            .into_iter()
            .collect::<HashMap<_, _>>();
        let mut q = self
            .conn
            .prepare(
                "SELECT c.seq, c.time, u.tbl, u.k1, \
                 coalesce(length(u.a), 0) + coalesce(length(u.c), 0) \
                 FROM history_commits c LEFT JOIN history_undo u ON u.commit_no = c.seq \
                 ORDER BY c.seq",
            )
            .map_err(&err)?;
        let mut rows = q.query([]).map_err(&err)?;
        let mut out: Vec<Commit> = Vec::new();
        while let Some(r) = rows.next().map_err(&err)? {
            let seq: i64 = r.get(0).map_err(&err)?;
            let time: i64 = r.get(1).map_err(&err)?;
            if out.last().is_none_or(|c| c.index != seq as u64) {
                out.push(Commit {
                    index: u64::try_from(seq).unwrap_or(0),
                    offset: 0,
                    bytes: 0,
                    time_ms: u64::try_from(time).ok(),
                    snapshot: false,
                    vats: Vec::new(),
                    upserts: 0,
                    removes: 0,
                });
            }
            let Some(commit) = out.last_mut() else {
                continue;
            };
            let Some(tag) = r.get::<_, Option<i64>>(2).map_err(&err)? else {
                continue;
            };
            let k1: i64 = r.get(3).map_err(&err)?;
            let bytes: i64 = r.get(4).map_err(&err)?;
            commit.bytes += u64::try_from(bytes).unwrap_or(0);
            if tag == ACTORS {
                // The journal keeps what a row was, not what the commit made of it.
                commit.upserts += 1;
                let vat = vat_names
                    .get(&k1)
                    .cloned()
                    .unwrap_or_else(|| format!("(vat row {k1}, gone)"));
                if !commit.vats.contains(&vat) {
                    commit.vats.push(vat);
                }
            }
        }
        Ok(out)
    }

    /// Takes the database back to the state acknowledged at commit `commit` (one that
    /// [`SqliteStore::history`] lists), after copying it whole to the new file `keep_as`
    /// (SQLite's `VACUUM INTO`: a consistent database a program opens as it is).
    ///
    /// The journal: each registry commit adds a row to the table `history_commits` (its
    /// number and time, ms since 1970); TEMP triggers on `vats`, `types`, `names` and
    /// `actors` write each row's image before it changes (or that it was absent) to
    /// `history_undo`, tagged with the commit's number. A rewind puts every row changed
    /// after `commit` back to its image before the first such change, in one transaction.
    /// It reaches back [`SqliteStore::history_window`] commits.
    pub fn rewind(&mut self, commit: u64, keep_as: &Path) -> Result<Rewound, StoreError> {
        let path = self.path.clone();
        let err = sqlite_err(&path, "rewinding");
        let listed: Vec<i64> = {
            let mut q = self
                .conn
                .prepare("SELECT seq FROM history_commits ORDER BY seq")
                .map_err(&err)?;
            q.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(&err)?
        };
        let to = i64::try_from(commit).unwrap_or(i64::MAX);
        if !listed.contains(&to) {
            let held = match (listed.first(), listed.last()) {
                (Some(first), Some(last)) => format!("commits {first} to {last}"),
                _ => "no commit (its history window is 0, or nothing was committed)".to_string(),
            };
            return Err(StoreError::Corrupt {
                path: path.clone(),
                offset: 0,
                detail: format!(
                    "its journal reaches {held}; commit {commit} is not among them (the \
                     window is {} commits)",
                    self.history_window()?
                ),
            });
        }
        if keep_as.exists() {
            return Err(StoreError::Io {
                op: "keeping the current database as",
                path: keep_as.to_path_buf(),
                source: std::io::ErrorKind::AlreadyExists.into(),
            });
        }
        let keep = keep_as
            .to_str()
            .ok_or_else(|| StoreError::Io {
                op: "keeping the current database as",
                path: keep_as.to_path_buf(),
                source: std::io::Error::other("the path is not UTF-8"),
            })?
            .to_string();
        self.conn
            .execute("VACUUM INTO ?1", [keep])
            .map_err(sqlite_err(&path, "keeping a copy of"))?;
        std::fs::File::open(keep_as)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", keep_as))?;
        let dir = parent_dir(keep_as);
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing directory", &dir))?;

        // The undo itself is not journaled.
        set_triggers(&self.conn, &path, false)?;
        let undone = self.undo_after(to);
        let on = self.history_window()? > 0;
        set_triggers(&self.conn, &path, on)?;
        undone?;
        self.reload_ids()?;
        let bytes = std::fs::metadata(&path)
            .map_err(io_err("reading metadata of", &path))?
            .len();
        Ok(Rewound {
            commits_kept: commit,
            commits_dropped: listed.iter().filter(|s| **s > to).count() as u64,
            bytes,
            kept_in: keep_as.to_path_buf(),
        })
    }

    /// In one transaction: every row changed after commit `to` back to its image before
    /// the first such change, and the journal of those commits dropped.
    fn undo_after(&mut self, to: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = sqlite_err(&path, "rewinding");
        let tx = self.conn.transaction().map_err(&err)?;
        let mut first: Vec<Undo> = Vec::new();
        {
            let mut seen = std::collections::HashSet::new();
            let mut q = tx
                .prepare(
                    "SELECT tbl, k1, k2, present, a, b, c, d FROM history_undo \
                     WHERE commit_no > ?1 ORDER BY commit_no",
                )
                .map_err(&err)?;
            let mut rows = q.query([to]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let tag: i64 = r.get(0).map_err(&err)?;
                let key = (r.get(1).map_err(&err)?, r.get(2).map_err(&err)?);
                // The earliest commit's image of a row is the one acknowledged at `to`.
                if !seen.insert((tag, key)) {
                    continue;
                }
                first.push(Undo {
                    tag: journaled(tag, &path)?,
                    key,
                    present: r.get(3).map_err(&err)?,
                    values: [
                        r.get(4).map_err(&err)?,
                        r.get(5).map_err(&err)?,
                        r.get(6).map_err(&err)?,
                        r.get(7).map_err(&err)?,
                    ],
                });
            }
        }
        // All deletes before any insert: a unique name may move between rows.
        for u in &first {
            let j = &JOURNALED[u.tag];
            let key = where_key(j);
            tx.prepare_cached(&format!("DELETE FROM {} WHERE {key}", j.table))
                .and_then(|mut s| s.execute(params![u.key.0, u.key.1]))
                .map_err(&err)?;
        }
        for u in first.iter().filter(|u| u.present) {
            let j = &JOURNALED[u.tag];
            let cols: Vec<&str> = j.keys.iter().chain(j.values).copied().collect();
            let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let mut args: Vec<Value> = vec![Value::Integer(u.key.0)];
            if j.keys.len() == 2 {
                args.push(Value::Integer(u.key.1));
            }
            args.extend(u.values[..j.values.len()].iter().cloned());
            tx.prepare_cached(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                j.table,
                cols.join(", "),
                marks.join(", ")
            ))
            .and_then(|mut s| s.execute(rusqlite::params_from_iter(args)))
            .map_err(&err)?;
        }
        tx.execute("DELETE FROM history_undo WHERE commit_no > ?1", [to])
            .map_err(&err)?;
        tx.execute("DELETE FROM history_commits WHERE seq > ?1", [to])
            .map_err(&err)?;
        tx.commit().map_err(&err)
    }
}

/// The place in [`JOURNALED`] of the table tagged `tag` in the journal.
fn journaled(tag: i64, path: &Path) -> Result<usize, StoreError> {
    usize::try_from(tag)
        .ok()
        .filter(|t| *t < JOURNALED.len())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail: format!("its history names table {tag}, which it does not journal"),
        })
}

/// `id = ?1 AND ?2 IS ?2` or `vat = ?1 AND id = ?2`: both forms take the same two
/// parameters, the second unused by one-key tables.
fn where_key(j: &Journaled) -> String {
    let second = j
        .keys
        .get(1)
        .map_or_else(|| "?2 IS ?2".to_string(), |k| format!("{k} = ?2"));
    format!("{} = ?1 AND {second}", j.keys[0])
}
