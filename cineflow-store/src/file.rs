//! [`FileStore`]: a directory of readable JSON files (layout and protocol on the type).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use cineflow_core::store::{
    Page, PageRequest, RunQuery, Store, TaskQuery, check_task_write, is_claimable,
    tasks_recording_vendor_job,
};
use cineflow_core::{
    Error, Lease, ProviderId, Result, Run, RunCounts, RunId, Segment, SegmentId, SegmentPatch,
    Storyboard, StoryboardId, Task, TaskId,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::common::{codec, deadline, exists, lease_lost, not_found, now, stale};

const STORYBOARDS: &str = "storyboards";
const RUNS: &str = "runs";
const TASKS: &str = "tasks";
const LOCK: &str = "LOCK";

/// A [`Store`] in a directory of pretty JSON files. Clones share the same open store.
///
/// # Layout
///
/// ```text
/// {dir}/LOCK                      locked (flock) while a process has the store open
/// {dir}/storyboards/{id}.json     one pretty-printed Storyboard each
/// {dir}/runs/{id}.json            one Run each
/// {dir}/tasks/{id}.json           one Task each (with its attempts, lease and revision)
/// ```
///
/// # Durability and recovery
///
/// Every file is written as `{name}.tmp`, flushed to disk (`fsync`), renamed over `{name}`, and
/// the directory is flushed, so a reader or a crash sees either the old or the new version of a
/// record, never a mix. A `*.tmp` file left by a crash is ignored and removed at open.
///
/// [`insert_run`](Store::insert_run) writes every task file first and the run file last: the
/// run file is the commit marker. At open, task files whose run file is missing (a crash in the
/// middle of an insert) are removed, so an insert is all or nothing.
///
/// # Concurrency
///
/// One process at a time: [`FileStore::open`] takes an exclusive lock on `{dir}/LOCK`, and a
/// second open of the same directory (from this process or another) fails with
/// [`Error::Config`] until the first store (all its clones) is dropped. Within the process,
/// every record is indexed in memory for queries, writes are serialized, and all file I/O runs
/// on tokio's blocking pool. For several processes or machines, use SQLite or Postgres.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use cineflow_core::Store;
/// let dir = tempfile::tempdir()?;
/// let store = cineflow_store::FileStore::open(dir.path()).await?;
/// assert_eq!(store.list_storyboards(Default::default()).await?.total, 0);
/// // A second open of the same directory is refused while the first is alive.
/// assert!(cineflow_store::FileStore::open(dir.path()).await.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// Holds the exclusive lock on `LOCK` for as long as the store is open.
    _lock: File,
    /// Serializes writers; only ever locked on blocking threads.
    write: Mutex<()>,
    state: RwLock<State>,
    tokens: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    storyboards: HashMap<StoryboardId, Storyboard>,
    segment_owner: HashMap<SegmentId, StoryboardId>,
    runs: HashMap<RunId, Run>,
    tasks: HashMap<TaskId, Task>,
    run_tasks: HashMap<RunId, Vec<TaskId>>,
}

impl State {
    fn put_storyboard(&mut self, storyboard: Storyboard) {
        if let Some(old) = self.storyboards.get(&storyboard.id) {
            for s in &old.segments {
                self.segment_owner.remove(&s.id);
            }
        }
        for s in &storyboard.segments {
            self.segment_owner.insert(s.id, storyboard.id);
        }
        self.storyboards.insert(storyboard.id, storyboard);
    }

    fn put_task(&mut self, task: Task) {
        match self.tasks.get(&task.id).map(|old| old.run_id) {
            Some(run) if run == task.run_id => {}
            moved_from => {
                if let Some(ids) = moved_from.and_then(|run| self.run_tasks.get_mut(&run)) {
                    ids.retain(|id| *id != task.id);
                }
                self.run_tasks.entry(task.run_id).or_default().push(task.id);
            }
        }
        self.tasks.insert(task.id, task);
    }

    fn task(&self, id: TaskId) -> Result<&Task> {
        self.tasks.get(&id).ok_or_else(|| not_found("task", id))
    }
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir`: takes the directory's lock, removes torn
    /// `*.tmp` files and tasks of uncommitted runs, and loads every record into the in-memory
    /// index.
    ///
    /// # Errors
    /// [`Error::Config`] if another store holds the directory's lock; [`Error::Backend`] for an
    /// I/O error or a record file that is not valid JSON.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let inner = tokio::task::spawn_blocking(move || Inner::open(root))
            .await
            .map_err(|e| Error::backend("file store: the open task failed", e))??;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Writers validate before they mutate, so a poisoned lock holds consistent data.
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a blocking thread with the write lock held. The closure runs to completion
    /// even if the caller stops waiting, so the index and the files never disagree.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _serialized = inner.write.lock().unwrap_or_else(|p| p.into_inner());
            f(&inner)
        })
        .await
        .map_err(|e| Error::backend("file store: a write task failed", e))?
    }
}

impl Inner {
    fn open(root: PathBuf) -> Result<Self> {
        let io_err = |what: &str, path: &Path, e: io::Error| {
            Error::backend(format!("file store: {what} {}", path.display()), e)
        };
        fs::create_dir_all(&root).map_err(|e| io_err("cannot create", &root, e))?;
        let lock = acquire_lock(&root)?;
        for sub in [STORYBOARDS, RUNS, TASKS] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        }

        let mut state = State::default();
        for sb in load_dir::<Storyboard>(&root.join(STORYBOARDS), |s| s.id.to_string())? {
            state.put_storyboard(sb);
        }
        for run in load_dir::<Run>(&root.join(RUNS), |r| r.id.to_string())? {
            state.runs.insert(run.id, run);
        }
        let tasks_dir = root.join(TASKS);
        let mut max_token = 0;
        let mut orphans = false;
        for task in load_dir::<Task>(&tasks_dir, |t| t.id.to_string())? {
            if state.runs.contains_key(&task.run_id) {
                max_token = max_token.max(task.lease.as_ref().map_or(0, |l| l.token));
                state.put_task(task);
            } else {
                // The run's commit marker was never written: an interrupted insert_run.
                let path = tasks_dir.join(format!("{}.json", task.id));
                tracing::warn!(path = %path.display(), "removing a task of an uncommitted run");
                fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
                orphans = true;
            }
        }
        if orphans {
            sync_dir(&tasks_dir)?;
        }
        Ok(Self {
            root,
            _lock: lock,
            write: Mutex::new(()),
            state: RwLock::new(state),
            tokens: AtomicU64::new(max_token),
        })
    }

    fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn dir(&self, kind: &str) -> PathBuf {
        self.root.join(kind)
    }

    /// Writes one record file atomically and makes the rename durable.
    fn save<T: Serialize>(&self, kind: &str, id: impl std::fmt::Display, value: &T) -> Result<()> {
        let dir = self.dir(kind);
        write_atomic(&dir, &format!("{id}.json"), value)?;
        sync_dir(&dir)
    }

    fn next_token(&self) -> u64 {
        self.tokens.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Opens `{root}/LOCK` and takes an exclusive, non-blocking lock on it.
fn acquire_lock(root: &Path) -> Result<File> {
    let path = root.join(LOCK);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::backend(format!("file store: cannot open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => {
            // For humans: who holds it. The lock, not this content, is what excludes others.
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "pid {}", std::process::id()));
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(Error::Config(format!(
                "file store {} is already open (its LOCK file is held{}); \
                 a file store can be opened by one process at a time",
                root.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" by {holder}")
                }
            )))
        }
        Err(TryLockError::Error(e)) => Err(Error::backend(
            format!("file store: cannot lock {}", path.display()),
            e,
        )),
    }
}

/// Reads every `*.json` record of a directory, removing torn `*.tmp` files.
fn load_dir<T: DeserializeOwned>(dir: &Path, id_of: impl Fn(&T) -> String) -> Result<Vec<T>> {
    let io_err = |what: &str, path: &Path, e: io::Error| {
        Error::backend(format!("file store: {what} {}", path.display()), e)
    };
    let mut out = Vec::new();
    let mut removed_tmp = false;
    for entry in fs::read_dir(dir).map_err(|e| io_err("cannot list", dir, e))? {
        let path = entry.map_err(|e| io_err("cannot list", dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tmp") {
            tracing::warn!(path = %path.display(), "removing a torn write");
            fs::remove_file(&path).map_err(|e| io_err("cannot remove", &path, e))?;
            removed_tmp = true;
            continue;
        }
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let bytes = fs::read(&path).map_err(|e| io_err("cannot read", &path, e))?;
        let value: T = serde_json::from_slice(&bytes)
            .map_err(|e| codec(format!("file store: {} is not valid", path.display()), e))?;
        if id_of(&value) != stem {
            return Err(Error::Backend {
                message: format!(
                    "file store: {} holds the record {}, not {stem}",
                    path.display(),
                    id_of(&value)
                ),
                source: None,
            });
        }
        out.push(value);
    }
    if removed_tmp {
        sync_dir(dir)?;
    }
    Ok(out)
}

/// `{dir}/{name}.tmp` → fsync → rename to `{dir}/{name}`. The caller flushes the directory.
fn write_atomic<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| codec(format!("file store: cannot encode {name}"), e))?;
    bytes.push(b'\n');
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::backend(format!("file store: cannot write {}", path.display()), e)
    })
}

/// Flushes a directory so that renames in it survive a crash.
/// Removes a record file; one already gone is fine.
fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::backend(
            format!("cannot remove {}", path.display()),
            e,
        )),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::backend(format!("file store: cannot flush {}", dir.display()), e))
}

#[async_trait]
impl Store for FileStore {
    async fn put_storyboard(&self, storyboard: &Storyboard) -> Result<()> {
        let storyboard = storyboard.clone();
        self.write(move |inner| {
            inner.save(STORYBOARDS, storyboard.id, &storyboard)?;
            inner.state_mut().put_storyboard(storyboard);
            Ok(())
        })
        .await
    }

    async fn get_storyboard(&self, id: StoryboardId) -> Result<Storyboard> {
        self.read()
            .storyboards
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found("storyboard", id))
    }

    async fn list_storyboards(&self, page: PageRequest) -> Result<Page<Storyboard>> {
        let mut all: Vec<Storyboard> = self.read().storyboards.values().cloned().collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(page.slice(all))
    }

    async fn get_segment(&self, id: SegmentId) -> Result<(StoryboardId, Segment)> {
        let st = self.read();
        st.segment_owner
            .get(&id)
            .and_then(|sb| st.storyboards.get(sb))
            .and_then(|sb| {
                sb.segments
                    .iter()
                    .find(|s| s.id == id)
                    .map(|s| (sb.id, s.clone()))
            })
            .ok_or_else(|| not_found("segment", id))
    }

    async fn update_segment(&self, id: SegmentId, patch: &SegmentPatch) -> Result<Segment> {
        let patch = patch.clone();
        self.write(move |inner| {
            let mut sb = {
                let st = inner.state();
                st.segment_owner
                    .get(&id)
                    .and_then(|sb| st.storyboards.get(sb))
                    .cloned()
                    .ok_or_else(|| not_found("segment", id))?
            };
            let seg = sb
                .segments
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or_else(|| not_found("segment", id))?;
            seg.apply(&patch)?;
            let seg = seg.clone();
            inner.save(STORYBOARDS, sb.id, &sb)?;
            inner.state_mut().put_storyboard(sb);
            Ok(seg)
        })
        .await
    }

    async fn insert_run(&self, run: &Run, tasks: &[Task]) -> Result<()> {
        let run = run.clone();
        let tasks = tasks.to_vec();
        self.write(move |inner| {
            {
                let st = inner.state();
                if st.runs.contains_key(&run.id) {
                    return Err(exists("run", run.id, "already exists"));
                }
                let mut seen = HashSet::new();
                for t in &tasks {
                    if t.run_id != run.id {
                        return Err(exists("task", t.id, "belongs to another run"));
                    }
                    if st.tasks.contains_key(&t.id) || !seen.insert(t.id) {
                        return Err(exists("task", t.id, "already exists"));
                    }
                }
            }
            // Tasks first, the run file last: it is the commit marker (see the module docs).
            let tasks_dir = inner.dir(TASKS);
            for t in &tasks {
                write_atomic(&tasks_dir, &format!("{}.json", t.id), t)?;
            }
            sync_dir(&tasks_dir)?;
            inner.save(RUNS, run.id, &run)?;
            let mut st = inner.state_mut();
            st.run_tasks.entry(run.id).or_default();
            st.runs.insert(run.id, run);
            for t in tasks {
                st.put_task(t);
            }
            Ok(())
        })
        .await
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        self.read()
            .runs
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found("run", id))
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        let mut all: Vec<Run> = self
            .read()
            .runs
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(query.page.slice(all))
    }

    async fn update_run(&self, run: &Run) -> Result<Run> {
        let mut next = run.clone();
        self.write(move |inner| {
            let stored = inner
                .state()
                .runs
                .get(&next.id)
                .map(|r| r.revision)
                .ok_or_else(|| not_found("run", next.id))?;
            if stored != next.revision {
                return Err(stale("run", next.id, next.revision, stored));
            }
            next.revision += 1;
            inner.save(RUNS, next.id, &next)?;
            inner.state_mut().runs.insert(next.id, next.clone());
            Ok(next)
        })
        .await
    }

    async fn delete_run(&self, id: RunId) -> Result<()> {
        self.write(move |inner| {
            let tasks = {
                let st = inner.state();
                if !st.runs.contains_key(&id) {
                    return Err(not_found("run", id));
                }
                st.run_tasks.get(&id).cloned().unwrap_or_default()
            };
            // The run file first: tasks without their run file are an uncommitted run's, which
            // `open` removes, so a crash midway leaves nothing behind.
            let runs_dir = inner.dir(RUNS);
            remove_file(&runs_dir.join(format!("{id}.json")))?;
            sync_dir(&runs_dir)?;
            let tasks_dir = inner.dir(TASKS);
            for t in &tasks {
                remove_file(&tasks_dir.join(format!("{t}.json")))?;
            }
            sync_dir(&tasks_dir)?;
            let mut st = inner.state_mut();
            st.runs.remove(&id);
            st.run_tasks.remove(&id);
            for t in tasks {
                st.tasks.remove(&t);
            }
            Ok(())
        })
        .await
    }

    async fn run_counts(&self, id: RunId) -> Result<RunCounts> {
        let st = self.read();
        let ids = st.run_tasks.get(&id).ok_or_else(|| not_found("run", id))?;
        Ok(RunCounts::from_statuses(
            ids.iter().filter_map(|t| st.tasks.get(t)).map(|t| t.status),
        ))
    }

    async fn get_task(&self, id: TaskId) -> Result<Task> {
        self.read().task(id).cloned()
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        let mut all: Vec<Task> = {
            let st = self.read();
            match query.run_id {
                Some(run) => st
                    .run_tasks
                    .get(&run)
                    .map(|ids| ids.iter().filter_map(|id| st.tasks.get(id)).collect())
                    .unwrap_or_default(),
                None => st.tasks.values().collect::<Vec<_>>(),
            }
            .into_iter()
            .filter(|t| query.matches(t))
            .cloned()
            .collect()
        };
        all.sort_by(|a, b| query.compare(a, b));
        Ok(query.page.slice(all))
    }

    async fn find_tasks_by_vendor_job(
        &self,
        provider: &ProviderId,
        vendor_job_id: &str,
    ) -> Result<Vec<Task>> {
        Ok(tasks_recording_vendor_job(
            self.read().tasks.values(),
            provider,
            vendor_job_id,
        ))
    }

    async fn update_task(&self, task: &Task) -> Result<Task> {
        let mut next = task.clone();
        self.write(move |inner| {
            let (revision, lease) = {
                let st = inner.state();
                let stored = st.task(next.id)?;
                check_task_write(stored, &next, now())?;
                (stored.revision, stored.lease.clone())
            };
            next.revision = revision + 1;
            next.lease = lease;
            inner.save(TASKS, next.id, &next)?;
            inner.state_mut().put_task(next.clone());
            Ok(next)
        })
        .await
    }

    async fn claim_tasks(
        &self,
        owner: &str,
        run: Option<RunId>,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<Task>> {
        let owner = owner.to_owned();
        self.write(move |inner| {
            let now = now();
            let mut claimed: Vec<Task> = {
                let st = inner.state();
                st.tasks
                    .values()
                    .filter(|t| run.is_none_or(|r| r == t.run_id) && is_claimable(t, now))
                    .cloned()
                    .collect()
            };
            claimed.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            claimed.truncate(limit);
            if claimed.is_empty() {
                return Ok(claimed);
            }
            let tasks_dir = inner.dir(TASKS);
            for t in &mut claimed {
                t.lease = Some(Lease {
                    owner: owner.clone(),
                    token: inner.next_token(),
                    expires_at: deadline(now, ttl),
                });
                t.revision += 1;
                write_atomic(&tasks_dir, &format!("{}.json", t.id), t)?;
            }
            sync_dir(&tasks_dir)?;
            let mut st = inner.state_mut();
            for t in &claimed {
                st.put_task(t.clone());
            }
            Ok(claimed)
        })
        .await
    }

    async fn heartbeat(&self, task: TaskId, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let lease = lease.clone();
        self.write(move |inner| {
            let mut t = inner.state().task(task)?.clone();
            let held = match &mut t.lease {
                Some(held) if held.token == lease.token && held.owner == lease.owner => held,
                _ => return Err(lease_lost(task, &lease.owner)),
            };
            held.expires_at = deadline(now(), ttl);
            let renewed = held.clone();
            inner.save(TASKS, t.id, &t)?;
            inner.state_mut().put_task(t);
            Ok(renewed)
        })
        .await
    }

    async fn release(&self, task: TaskId, lease: &Lease) -> Result<()> {
        let token = lease.token;
        self.write(move |inner| {
            let Some(mut t) = inner.state().tasks.get(&task).cloned() else {
                return Ok(());
            };
            if t.lease.as_ref().is_none_or(|h| h.token != token) {
                return Ok(());
            }
            t.lease = None;
            inner.save(TASKS, t.id, &t)?;
            inner.state_mut().put_task(t);
            Ok(())
        })
        .await
    }
}
