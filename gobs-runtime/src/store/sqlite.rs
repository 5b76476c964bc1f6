//! [`SqliteStore`]: every vat of a registry in one SQLite database.

mod history;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::fsutil::{StoreLock, prepare_dir};
use super::image::ImageBuilder;
use super::shared::{RegistryCommit, Store, VatRecord, VatWrite};
use super::{Durability, StoreError, VatImage};
use crate::portrait::{ActorId, Delta, Portrait};

const FORMAT: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vats (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    saved INTEGER NOT NULL, roots BLOB NOT NULL, next_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS types (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actors (vat INTEGER NOT NULL, id INTEGER NOT NULL,
    type INTEGER NOT NULL, version INTEGER NOT NULL, args BLOB NOT NULL,
    PRIMARY KEY (vat, id)) WITHOUT ROWID;
";

/// Every vat of a registry in one SQLite database.
///
/// A real database users can open with `sqlite3` (read-only while gobs runs: gobs holds it
/// in exclusive locking mode). The schema:
///
/// ```sql
/// CREATE TABLE meta   (key TEXT PRIMARY KEY, value TEXT NOT NULL);        -- format = 1
/// CREATE TABLE vats   (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
///                      saved INTEGER NOT NULL, roots BLOB NOT NULL, next_id INTEGER NOT NULL);
/// CREATE TABLE types  (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE); -- interned names
/// CREATE TABLE names  (id INTEGER PRIMARY KEY, name TEXT NOT NULL);  -- the registry's name table
/// CREATE TABLE actors (vat INTEGER NOT NULL, id INTEGER NOT NULL, type INTEGER NOT NULL,
///                      version INTEGER NOT NULL, args BLOB NOT NULL,
///                      PRIMARY KEY (vat, id)) WITHOUT ROWID;
/// ```
///
/// `roots` is a MessagePack array of actor ids; `args` the portrait's MessagePack bytes.
/// A type name is stored once, in `types`; actors refer to it by number. References inside
/// `args` name their actor type by its number in `names` (the registry's name table).
///
/// A registry commit is one SQLite transaction (`BEGIN IMMEDIATE` … `COMMIT`) in WAL mode,
/// so SQLite's own guarantee holds: a crash at any instant reopens to the last committed
/// transaction. Durability maps to `synchronous`: [`Durability::EveryCommit`] is `FULL`
/// (the WAL is fsynced at every commit), [`Durability::Group`] is `NORMAL` (fsynced at
/// checkpoints: a power cut may take back the last commits, a killed process loses
/// nothing), [`Durability::Buffered`] is `OFF`.
///
/// Each commit is journaled, so that [`SqliteStore::rewind`] can take the database back to
/// an earlier one (its documentation describes the journal's tables).
pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
    /// Interned type names → row id (rows committed so far).
    types: HashMap<String, i64>,
    /// Vat names → row id (rows committed so far).
    vats: HashMap<String, i64>,
    _lock: StoreLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        prepare_dir(&path)?;
        let lock = StoreLock::acquire(&path)?;
        let err = |op: &'static str| {
            let path = path.clone();
            move |source| StoreError::Sqlite { op, path, source }
        };
        let conn = Connection::open(&path).map_err(err("opening"))?;
        let sync = match durability {
            Durability::EveryCommit => "FULL",
            Durability::Group { .. } => "NORMAL",
            Durability::Buffered => "OFF",
        };
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;"
        ))
        .map_err(err("configuring"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the tables of"))?;
        let format: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err("reading"))?;
        match format.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('format', ?1)",
                    [FORMAT],
                )
                .map_err(err("initializing"))?;
            }
            Some(FORMAT) => {}
            Some(other) => {
                return Err(StoreError::Corrupt {
                    path,
                    offset: 0,
                    detail: format!(
                        "the database has gobs format {other}, this program reads format \
                         {FORMAT}: run the program that wrote it (or a newer one)"
                    ),
                });
            }
        }
        history::install(&conn, &path)?;
        let mut store = SqliteStore {
            path,
            conn,
            types: HashMap::new(),
            vats: HashMap::new(),
            _lock: lock,
        };
        store.reload_ids()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset: 0,
            detail,
        }
    }

    /// Every `(id, name)` row of `table` (`types`, `vats` or `names`).
    fn id_names<I: rusqlite::types::FromSql>(
        &self,
        table: &'static str,
    ) -> Result<Vec<(I, String)>, StoreError> {
        let mut q = self
            .conn
            .prepare(&format!("SELECT id, name FROM {table}"))
            .map_err(self.err("reading"))?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, I>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.err("reading"))?;
        rows.collect::<Result<_, _>>().map_err(self.err("reading"))
    }

    /// Reads the interned ids again (after a rolled-back commit, whose rows are gone).
    fn reload_ids(&mut self) -> Result<(), StoreError> {
        let types = self.id_names::<i64>("types")?;
        let vats = self.id_names::<i64>("vats")?;
        self.types = types.into_iter().map(|(id, name)| (name, id)).collect();
        self.vats = vats.into_iter().map(|(id, name)| (name, id)).collect();
        Ok(())
    }

    fn write_all(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        for (id, name) in &commit.names {
            self.conn
                .prepare_cached("INSERT OR REPLACE INTO names (id, name) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![id, name]))
                .map_err(self.err("writing the name table of"))?;
        }
        for (name, write) in &commit.writes {
            match write {
                VatWrite::List => {
                    self.vat_id(name)?;
                }
                VatWrite::Drop => {
                    if let Some(vat) = self.vats.remove(*name) {
                        self.conn
                            .prepare_cached("DELETE FROM actors WHERE vat = ?1")
                            .and_then(|mut s| s.execute([vat]))
                            .map_err(self.err("dropping a vat from"))?;
                        self.conn
                            .prepare_cached("DELETE FROM vats WHERE id = ?1")
                            .and_then(|mut s| s.execute([vat]))
                            .map_err(self.err("dropping a vat from"))?;
                    }
                }
                VatWrite::Delta(d) => {
                    let vat = self.vat_id(name)?;
                    self.write_delta(vat, d)?;
                }
                VatWrite::Snapshot(g) => {
                    let vat = self.vat_id(name)?;
                    // Only the actors the graph lacks go, so an unchanged actor costs the
                    // history journal nothing.
                    let held: Vec<i64> = self
                        .conn
                        .prepare_cached("SELECT id FROM actors WHERE vat = ?1")
                        .and_then(|mut s| {
                            s.query_map([vat], |r| r.get(0))?.collect::<Result<_, _>>()
                        })
                        .map_err(self.err("replacing a vat in"))?;
                    let gone: Vec<ActorId> = held
                        .into_iter()
                        .filter_map(|id| u64::try_from(id).ok().map(ActorId))
                        .filter(|id| !g.actors.contains_key(id))
                        .collect();
                    let delta = Delta {
                        roots: Some(g.roots.clone()),
                        next_id: g.next_id,
                        upserts: Vec::new(),
                        removes: gone,
                    };
                    self.write_delta(vat, &delta)?;
                    for (id, p) in &g.actors {
                        self.upsert(vat, *id, p)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn vat_id(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.vats.get(name) {
            return Ok(*id);
        }
        let id = self
            .conn
            .prepare_cached(
                "INSERT INTO vats (name, saved, roots, next_id) VALUES (?1, 0, x'90', 0) \
                 RETURNING id",
            )
            .and_then(|mut s| s.query_row([name], |r| r.get::<_, i64>(0)))
            .map_err(self.err("listing a vat in"))?;
        self.vats.insert(name.to_string(), id);
        Ok(id)
    }

    fn type_id(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.types.get(name) {
            return Ok(*id);
        }
        let id = self
            .conn
            .prepare_cached("INSERT INTO types (name) VALUES (?1) RETURNING id")
            .and_then(|mut s| s.query_row([name], |r| r.get::<_, i64>(0)))
            .map_err(self.err("interning a type name in"))?;
        self.types.insert(name.to_string(), id);
        Ok(id)
    }

    fn upsert(&mut self, vat: i64, id: ActorId, p: &Portrait) -> Result<(), StoreError> {
        let ty = self.type_id(&p.name)?;
        let actor = i64::try_from(id.0)
            .map_err(|_| self.corrupt(format!("actor id {id} exceeds SQLite's integers")))?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO actors (vat, id, type, version, args) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![vat, actor, ty, p.version, p.args]))
            .map_err(self.err("writing an actor to"))?;
        Ok(())
    }

    fn write_delta(&mut self, vat: i64, d: &Delta) -> Result<(), StoreError> {
        let next = i64::try_from(d.next_id).unwrap_or(i64::MAX);
        match &d.roots {
            Some(roots) => {
                let roots = rmp_serde::to_vec(roots).map_err(|e| StoreError::Encode {
                    path: self.path.clone(),
                    what: "a vat's roots",
                    detail: e.to_string(),
                })?;
                self.conn
                    .prepare_cached(
                        "UPDATE vats SET saved = 1, roots = ?2, next_id = max(next_id, ?3) \
                         WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![vat, roots, next]))
            }
            None => self
                .conn
                .prepare_cached(
                    "UPDATE vats SET saved = 1, next_id = max(next_id, ?2) WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![vat, next])),
        }
        .map_err(self.err("writing a vat to"))?;
        for (id, p) in &d.upserts {
            self.upsert(vat, *id, p)?;
        }
        for id in &d.removes {
            let actor = i64::try_from(id.0).unwrap_or(i64::MAX);
            self.conn
                .prepare_cached("DELETE FROM actors WHERE vat = ?1 AND id = ?2")
                .and_then(|mut s| s.execute(params![vat, actor]))
                .map_err(self.err("removing an actor from"))?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        self.id_names::<u32>("names")
    }

    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        // Per vat row: its name, and its roots and next id when saved.
        type Row = (String, Option<(Vec<ActorId>, u64)>);
        let mut by_id: HashMap<i64, Row> = HashMap::new();
        // Vats whose rows cannot be read: reported, not fatal to the others.
        let mut damaged: HashMap<i64, String> = HashMap::new();
        {
            let mut q = self
                .conn
                .prepare("SELECT id, name, saved, roots, next_id FROM vats")
                .map_err(self.err("reading"))?;
            let rows = q
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(self.err("reading"))?;
            for row in rows {
                let (id, name, saved, roots, next_id) = row.map_err(self.err("reading"))?;
                let saved = saved.then(|| {
                    let roots =
                        super::from_slice_limited::<Vec<ActorId>>(&roots).unwrap_or_else(|e| {
                            damaged.insert(id, format!("its roots do not decode: {e}"));
                            Vec::new()
                        });
                    (roots, u64::try_from(next_id).unwrap_or(0))
                });
                by_id.insert(id, (name, saved));
            }
        }
        let names: HashMap<i64, String> = self.id_names::<i64>("types")?.into_iter().collect();
        // Each vat's actors, their arguments copied once into one buffer per vat.
        let mut images: HashMap<i64, ImageBuilder> = HashMap::new();
        {
            let mut q = self
                .conn
                .prepare("SELECT vat, id, type, version, args FROM actors ORDER BY vat, id")
                .map_err(self.err("reading"))?;
            let mut rows = q.query([]).map_err(self.err("reading"))?;
            let mut current: Option<(i64, ImageBuilder)> = None;
            // Actors of one type come in runs: its name is looked up once per run.
            let mut last_type: Option<(i64, &String)> = None;
            while let Some(row) = rows.next().map_err(self.err("reading"))? {
                let vat: i64 = row.get(0).map_err(self.err("reading"))?;
                let id: i64 = row.get(1).map_err(self.err("reading"))?;
                let ty: i64 = row.get(2).map_err(self.err("reading"))?;
                let version: u32 = row.get(3).map_err(self.err("reading"))?;
                let args = row
                    .get_ref(4)
                    .and_then(|v| v.as_blob().map_err(Into::into))
                    .map_err(self.err("reading"))?;
                let name = match last_type {
                    Some((t, name)) if t == ty => Some(name),
                    _ => names.get(&ty),
                };
                let Some(name) = name else {
                    damaged.entry(vat).or_insert_with(|| {
                        format!("actor #{id} has type {ty}, which the types table lacks")
                    });
                    continue;
                };
                let image = match &mut current {
                    Some((v, image)) if *v == vat => image,
                    _ => {
                        if let Some((v, image)) = current.take() {
                            images.insert(v, image);
                        }
                        &mut current.insert((vat, ImageBuilder::default())).1
                    }
                };
                last_type = Some((ty, name));
                image.append(ActorId(u64::try_from(id).unwrap_or(0)), name, version, args);
            }
            if let Some((v, image)) = current {
                images.insert(v, image);
            }
        }
        Ok(by_id
            .into_iter()
            .map(|(id, (name, saved))| {
                let record = match (damaged.remove(&id), saved) {
                    (Some(why), _) => VatRecord::Damaged(format!(
                        "{why} (in {}, vat row {id})",
                        self.path.display()
                    )),
                    (None, Some((roots, next_id))) => {
                        let image = images.remove(&id).unwrap_or_default();
                        VatRecord::Saved(image.finish_owned(roots, next_id))
                    }
                    (None, None) => VatRecord::Listed,
                };
                (name, record)
            })
            .collect())
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.err("beginning a transaction in"))?;
        let written = history::begin_commit(&self.conn, &self.path)
            .and_then(|()| self.write_all(commit))
            .and_then(|()| {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(self.err("committing to"))
            });
        if let Err(e) = written {
            // Nothing of this commit stays; the ids interned in it went with it.
            let _ = self.conn.execute_batch("ROLLBACK");
            if let Err(reload) = self.reload_ids() {
                tracing::error!(
                    "after a failed commit, rereading {}: {reload}",
                    self.path.display()
                );
            }
            return Err(e);
        }
        super::io_stats::count_commit();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
