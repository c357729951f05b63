//! The file source: a directory of Kubernetes YAML in, `DIR/status/` out.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::records::{BLOCK, Matcher, RecordKey, Records, Scanned, scan_records};
use super::status::{
    EventRecord, PoolStatusRecord, PoolsStatusFile, ServiceStatusRecord, ServicesStatusFile,
    SpeakerStatusFile,
};
use super::yaml::{Object, Origin, parse_file_as};
use super::{Loaded, SnapshotSource, SourceError, StatusSink};
use crate::services::ServiceView;
use crate::snapshot::ClusterSnapshot;

/// Name of the output directory inside the source directory.
pub const STATUS_DIR: &str = "status";
/// Service addresses written by the controller and read back by everyone.
pub const SERVICES_FILE: &str = "services.yaml";
/// Pool status.
pub const POOLS_FILE: &str = "pools.yaml";
/// Events, one JSON object per line.
pub const EVENTS_FILE: &str = "events.jsonl";

/// Time to let a burst of file events settle before reloading (editors write a
/// file in several steps).
const SETTLE: Duration = Duration::from_millis(5);

/// A directory of YAML documents.
#[derive(Clone, Debug)]
pub struct FileSource {
    dir: PathBuf,
    speakers: bool,
}

impl FileSource {
    /// A source reading `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSource {
            dir: dir.into(),
            speakers: false,
        }
    }

    /// Also reads the speakers' files into [`Loaded::speakers`] and wakes the watch
    /// when one changes (the controller's view of the speakers). Off by default:
    /// speakers would otherwise reload on each other's writes.
    pub fn with_speakers(mut self) -> Self {
        self.speakers = true;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/status`.
    pub fn status_dir(&self) -> PathBuf {
        self.dir.join(STATUS_DIR)
    }

    /// The YAML files read, sorted by name.
    fn input_files(&self) -> Result<Vec<PathBuf>, SourceError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| SourceError::io(&self.dir, &e))?;
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_yaml(p))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads the whole directory once. Fails only when the directory itself cannot
    /// be read; every other problem is in [`Loaded::errors`].
    pub fn load(&self) -> Result<Loaded, SourceError> {
        self.load_as()
    }

    /// [`FileSource::load`], each Service kept as `S`.
    pub fn load_as<S: ServiceView>(&self) -> Result<Loaded<S>, SourceError> {
        self.load_with(&mut ParseCache::default())
    }

    /// [`FileSource::load`], parsing again only the files that changed since they
    /// went into `cache`: with 10,000 Services in one file, a new Service in another
    /// must not cost a parse of them all.
    pub fn load_with<S: ServiceView>(
        &self,
        cache: &mut ParseCache<S>,
    ) -> Result<Loaded<S>, SourceError> {
        let t0 = std::time::Instant::now();
        let files = self.input_files()?;
        let before = cache.files.len();
        cache.files.retain(|p, _| files.contains(p));
        let mut unchanged = cache.files.len() == before && before == files.len();
        // Parse what changed into the cache first, then take each object once from
        // there into the snapshot: no intermediate copy of a whole file's objects
        // (with 10,000 Services it was 15 MB of the start-up peak, and 6-10 ms of
        // every reload).
        let mut read_errors = Vec::new();
        for file in &files {
            let stamp = std::fs::metadata(file).ok().map(|m| FileStamp::of(&m));
            let fresh = cache
                .files
                .get(file)
                .is_some_and(|c| stamp.is_some() && c.0 == stamp);
            if !fresh {
                unchanged = false;
                cache.inputs = None;
                match std::fs::read_to_string(file) {
                    Ok(text) => {
                        let (objects, errs) = parse_file_as(file, &text);
                        let mut objects: Vec<(u32, Object<S>)> = objects
                            .into_iter()
                            .map(|(o, obj)| (u32::try_from(o.line).unwrap_or(u32::MAX), obj))
                            .collect();
                        objects.shrink_to_fit();
                        cache.files.insert(file.clone(), (stamp, objects, errs));
                    }
                    Err(e) => {
                        cache.files.remove(file);
                        read_errors.push(SourceError::io(file, &e));
                    }
                }
            }
        }
        // Only the status changed (a new Service's address, say): the user's
        // objects are the ones of the last load, already checked and sorted.
        let reused = unchanged && cache.inputs.is_some();
        let (mut snap, mut errors, services) = match &cache.inputs {
            Some(c) if unchanged => (c.snap.clone(), c.errors.clone(), Arc::clone(&c.services)),
            _ => {
                let (mut snap, errors) = inputs_snapshot(&files, &cache.files, read_errors);
                let services = Arc::new(std::mem::take(&mut snap.services));
                let c = CachedInputs {
                    snap,
                    services,
                    errors,
                };
                let out = (c.snap.clone(), c.errors.clone(), Arc::clone(&c.services));
                cache.inputs = Some(c);
                out
            }
        };
        let t1 = std::time::Instant::now();
        let inputs = Inputs::new(services, reused);
        // A record whose text the last load put on a Service that is still the
        // same parsed object needs no parse: its result is in the cache.
        let status = {
            let mut m = Matcher::new(&cache.overlaid.entries, Overlaid::key);
            self.read_services_with(
                |k| m.find(k, |e| inputs.find(e).is_some()),
                |rec| inputs.put_status(&rec),
            )
        };
        let t2 = std::time::Instant::now();
        snap.services = match status {
            Ok(status) => overlay_services(&inputs, status, &mut cache.overlaid),
            Err(e) => {
                errors.push(e);
                inputs.services.to_vec()
            }
        };
        tracing::debug!(
            inputs_us = (t1 - t0).as_micros() as u64,
            status_parse_us = (t2 - t1).as_micros() as u64,
            overlay_us = t2.elapsed().as_micros() as u64,
            "file source loaded"
        );
        let speakers = if self.speakers {
            self.read_speaker_heads(&mut cache.speakers, &mut errors)
        } else {
            None
        };
        Ok(Loaded {
            snapshot: snap,
            errors,
            speakers,
        })
    }

    /// The node, findings and sessions of every `status/speaker-*.yaml`, parsing
    /// again only the files that changed (each lists every Service its node
    /// announces: thousands of entries the controller does not read).
    fn read_speaker_heads(
        &self,
        cache: &mut SpeakerCache,
        errors: &mut Vec<SourceError>,
    ) -> Option<Vec<SpeakerStatusFile>> {
        let dir = self.status_dir();
        let paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_speaker_file(p))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                errors.push(SourceError::io(&dir, &e));
                return None;
            }
        };
        cache.retain(|p, _| paths.contains(p));
        for path in &paths {
            let stamp = std::fs::metadata(path).ok().map(|m| FileStamp::of(&m));
            if cache
                .get(path)
                .is_some_and(|c| stamp.is_some() && c.0 == stamp)
            {
                continue;
            }
            // A bad file counts as no speaker there, and says so on every load.
            let head = read_status::<SpeakerHead>(path).map(|h| {
                h.map(|h| SpeakerStatusFile {
                    node: h.node,
                    conditions: h.conditions,
                    sessions: h.sessions,
                    ..Default::default()
                })
            });
            cache.insert(path.clone(), (stamp, head));
        }
        let mut out = Vec::new();
        for (_, head) in cache.values() {
            match head {
                Ok(Some(h)) => out.push(h.clone()),
                Ok(None) => {}
                Err(e) => errors.push(e.clone()),
            }
        }
        out.sort_by(|a, b| a.node.cmp(&b.node));
        (!out.is_empty()).then_some(out)
    }

    /// Reads `status/services.yaml` (empty when it does not exist yet).
    pub fn read_services(&self) -> Result<ServicesStatusFile, SourceError> {
        Ok(read_status(&self.status_dir().join(SERVICES_FILE))?.unwrap_or_default())
    }

    /// [`FileSource::read_services`], parsing only the records `known` has no
    /// result for (the controller rewrites the whole file for one changed
    /// Service), each handed to `make` as it is parsed.
    fn read_services_with<R>(
        &self,
        known: impl FnMut(&RecordKey) -> Option<usize>,
        mut make: impl FnMut(ServiceStatusRecord) -> R,
    ) -> Result<Records<R>, SourceError> {
        let path = self.status_dir().join(SERVICES_FILE);
        let t = std::time::Instant::now();
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::default()),
            Err(e) => return Err(SourceError::io(&path, &e)),
        };
        let scanned =
            scan_records(file, BLOCK, known, &mut make).map_err(|e| SourceError::io(&path, &e))?;
        tracing::trace!(
            scan_us = t.elapsed().as_micros() as u64,
            records = scanned.as_ref().map(|r| r.order.len()),
            parsed = scanned.as_ref().map(|r| r.parsed.len()),
            "status records"
        );
        if let Some(records) = scanned {
            return Ok(records);
        }
        Ok(Records::unkeyed(
            read_status::<ServicesStatusFile>(&path)?
                .map(|f| f.services)
                .unwrap_or_default(),
            make,
        ))
    }

    /// Reads every `status/speaker-<node>.yaml`, sorted by node: the speakers that
    /// have run against this directory and what they announce. A missing status
    /// directory means no speaker has run yet.
    pub fn read_speakers(&self) -> Result<Vec<SpeakerStatusFile>, SourceError> {
        let dir = self.status_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::io(&dir, &e)),
        };
        let mut out = Vec::new();
        for path in rd.filter_map(Result::ok).map(|e| e.path()) {
            if is_speaker_file(&path)
                && let Some(s) = read_status::<SpeakerStatusFile>(&path)?
            {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(out)
    }

    /// Writes `status/<name>` atomically (temporary file, then rename), so that
    /// readers never see half a file.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), SourceError> {
        let dir = self.status_dir();
        std::fs::create_dir_all(&dir).map_err(|e| SourceError::io(&dir, &e))?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| SourceError::io(&tmp, &e))?;
        // Taken before the rename: readers see the file from within it, and on
        // two cores a woken reader may run before this thread logs. The
        // benchmarks time a new Service from here (a file's ctime is the
        // kernel's coarse clock, 4 ms ticks).
        let at = k8s_openapi::jiff::Timestamp::now();
        std::fs::rename(&tmp, &path).map_err(|e| SourceError::io(&path, &e))?;
        tracing::debug!(file = name, bytes = bytes.len(), renamed_at = %at, "status written");
        Ok(())
    }

    fn write_yaml<T: Serialize>(&self, name: &str, value: &T) -> Result<(), SourceError> {
        let text = serde_saphyr::to_string(value).map_err(|e| SourceError::Serialize {
            what: name.to_string(),
            message: e.to_string(),
        })?;
        self.write_atomic(name, text.as_bytes())
    }

    /// Replaces `status/services.yaml`.
    pub fn write_services_sync(&self, records: &[ServiceStatusRecord]) -> Result<(), SourceError> {
        let mut services = records.to_vec();
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.write_yaml(SERVICES_FILE, &ServicesStatusFile { services })
    }

    /// Replaces `status/pools.yaml`.
    pub fn write_pools_sync(&self, records: &[PoolStatusRecord]) -> Result<(), SourceError> {
        let mut pools = records.to_vec();
        pools.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.write_yaml(POOLS_FILE, &PoolsStatusFile { pools })
    }

    /// Replaces `status/speaker-<node>.yaml`.
    pub fn write_speaker_sync(&self, status: &SpeakerStatusFile) -> Result<(), SourceError> {
        self.write_yaml(&speaker_file(&status.node), status)
    }

    /// Appends to `status/events.jsonl`. Each line is written with one `write` on
    /// an append-mode file, so lines from several processes never interleave.
    pub fn emit_events_sync(&self, events: &[EventRecord]) -> Result<(), SourceError> {
        use std::io::Write;
        if events.is_empty() {
            return Ok(());
        }
        let dir = self.status_dir();
        std::fs::create_dir_all(&dir).map_err(|e| SourceError::io(&dir, &e))?;
        let path = dir.join(EVENTS_FILE);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SourceError::io(&path, &e))?;
        for ev in events {
            let mut line = serde_json::to_string(ev).map_err(|e| SourceError::Serialize {
                what: EVENTS_FILE.into(),
                message: e.to_string(),
            })?;
            line.push('\n');
            f.write_all(line.as_bytes())
                .map_err(|e| SourceError::io(&path, &e))?;
        }
        Ok(())
    }

    /// Starts watching the directory: the receiver holds the current state at once
    /// and a new one after every change that alters it. Needs a tokio runtime.
    /// Watching stops when the returned [`FileWatch`] is dropped.
    pub fn watch(&self) -> Result<FileWatch, SourceError> {
        self.watch_as()
    }

    /// [`FileSource::watch`], each Service kept as `S` (see [`ServiceView`]).
    pub fn watch_as<S: ServiceView>(&self) -> Result<FileWatch<S>, SourceError> {
        // The first load fills the cache the later ones use: the first change
        // must not cost a parse of everything again.
        let mut cache = ParseCache::default();
        let first = self.load_with(&mut cache)?;
        let (tx, rx) = watch::channel(Arc::new(first));
        // Each event says whether a user's file (not a status file) changed.
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<bool>();
        let werr = |e: notify::Error| SourceError::Watch {
            path: self.dir.clone(),
            message: e.to_string(),
        };
        // Events carry absolute paths; compare against the canonical directory so
        // that a relative --dir works too.
        let dir = std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone());
        let status_services = dir.join(STATUS_DIR).join(SERVICES_FILE);
        let status_dir = dir.join(STATUS_DIR);
        let speakers = self.speakers;
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) => {
                    // Reading a file is an event too (inotify IN_OPEN/IN_CLOSE_NOWRITE):
                    // without this, every process reading the directory woke every
                    // other one, and they reloaded each other without end.
                    if matches!(ev.kind, notify::EventKind::Access(_)) {
                        return;
                    }
                    let input = ev
                        .paths
                        .iter()
                        .any(|p| p.parent() == Some(dir.as_path()) && (is_yaml(p) || p.is_dir()));
                    let status = ev.paths.iter().any(|p| {
                        p == &status_services
                            || (speakers
                                && p.parent() == Some(status_dir.as_path())
                                && is_speaker_file(p))
                    });
                    if input || status {
                        // The receiver is gone only when the watch is being dropped.
                        let _ = ev_tx.send(input);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "file watch error; reloading to be safe"),
            })
            .map_err(werr)?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(werr)?;
        let status = self.status_dir();
        if std::fs::create_dir_all(&status).is_ok() {
            watcher
                .watch(&status, RecursiveMode::NonRecursive)
                .map_err(werr)?;
        }
        let source = self.clone();
        let reloads = Arc::new(AtomicU64::new(0));
        let counter = reloads.clone();
        let task = tokio::spawn(async move {
            while let Some(mut input) = ev_rx.recv().await {
                while let Ok(i) = ev_rx.try_recv() {
                    input |= i;
                }
                // Status files arrive whole (written aside, then renamed): only
                // the user's files need time to settle. A new Service's status
                // reaches the speakers 5 ms sooner.
                if input {
                    tokio::time::sleep(SETTLE).await;
                    while ev_rx.try_recv().is_ok() {}
                }
                counter.fetch_add(1, Ordering::Relaxed);
                match source.load_with(&mut cache) {
                    Ok(loaded) => {
                        let t = std::time::Instant::now();
                        let changed = **tx.borrow() != loaded;
                        tracing::debug!(
                            compare_us = t.elapsed().as_micros() as u64,
                            changed,
                            "file source compared"
                        );
                        if changed {
                            for e in &loaded.errors {
                                tracing::warn!(error = %e, "file source");
                            }
                            tx.send_replace(Arc::new(loaded));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the source directory; keeping the last state")
                    }
                }
            }
        });
        Ok(FileWatch {
            rx,
            _watcher: watcher,
            task,
            reloads,
        })
    }
}

/// What identifies one version of a file: a rewrite changes the modification time
/// or, with an atomic rename, the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        }
    }
}

/// Parsed input files by path, and the Services with their status put on, for
/// [`FileSource::load_with`].
#[derive(Debug)]
pub struct ParseCache<S = Service> {
    files: BTreeMap<PathBuf, CachedFile<S>>,
    /// The user's objects as the last load built them, while no file changed.
    inputs: Option<CachedInputs<S>>,
    overlaid: OverlayCache<S>,
    speakers: SpeakerCache,
}

impl<S> Default for ParseCache<S> {
    fn default() -> Self {
        ParseCache {
            files: BTreeMap::new(),
            inputs: None,
            overlaid: OverlayCache {
                entries: Vec::new(),
            },
            speakers: SpeakerCache::new(),
        }
    }
}

/// The user's objects of the last load: the Services apart, shared, so that a
/// status-only reload does not copy (and count a reference to) each of them twice
/// before the overlay replaces them.
#[derive(Debug)]
struct CachedInputs<S> {
    /// Without its Services.
    snap: ClusterSnapshot<S>,
    services: Arc<Vec<Arc<S>>>,
    errors: Vec<SourceError>,
}

/// Speaker files by path: the version read and what it held.
type SpeakerCache = BTreeMap<
    PathBuf,
    (
        Option<FileStamp>,
        Result<Option<SpeakerStatusFile>, SourceError>,
    ),
>;

/// The part of a speaker file the controller reads; serde skips the rest.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpeakerHead {
    node: String,
    #[serde(default)]
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    #[serde(default)]
    sessions: Vec<crate::v1beta1::BGPSessionStateStatus>,
}

/// A file's version, its objects by the line each starts on (the file is the
/// key: an `Origin` per object was 16 bytes more for each of 10,000 Services),
/// and its YAML errors.
type CachedFile<S> = (
    Option<FileStamp>,
    Vec<(u32, Object<S>)>,
    Vec<super::YamlError>,
);

/// A running watch of a [`FileSource`] directory.
pub struct FileWatch<S = Service> {
    rx: watch::Receiver<Arc<Loaded<S>>>,
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
    reloads: Arc<AtomicU64>,
}

impl<S> FileWatch<S> {
    /// How many times the directory was read again after a change event.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }
}

impl<S> Drop for FileWatch<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S: ServiceView> SnapshotSource<S> for FileWatch<S> {
    fn snapshots(&self) -> watch::Receiver<Arc<Loaded<S>>> {
        self.rx.clone()
    }
}

impl StatusSink for FileSource {
    async fn write_services(&self, records: &[ServiceStatusRecord]) -> Result<(), SourceError> {
        self.write_services_sync(records)
    }
    async fn write_pools(&self, records: &[PoolStatusRecord]) -> Result<(), SourceError> {
        self.write_pools_sync(records)
    }
    async fn write_speaker(&self, status: &SpeakerStatusFile) -> Result<(), SourceError> {
        self.write_speaker_sync(status)
    }
    async fn emit_events(&self, events: &[EventRecord]) -> Result<(), SourceError> {
        self.emit_events_sync(events)
    }
}

/// Parser limits for status files. They are written by FerroLB, and one holds a
/// record per Service: the default budget (250k nodes, meant for hand-written
/// configuration) runs out near 8,000 Services.
pub(crate) fn status_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 50_000_000;
    budget.max_events = 100_000_000;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    o
}

/// A status file written by FerroLB; `None` when it does not exist or is empty.
fn read_status<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, SourceError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SourceError::io(path, &e)),
    };
    parse_status(path, &text)
}

/// The text of a status file; `None` when it is empty.
fn parse_status<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<Option<T>, SourceError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_saphyr::from_str_with_options(text, status_options())
        .map(Some)
        .map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            SourceError::Yaml(super::YamlError {
                file: path.to_path_buf(),
                line,
                column,
                message: e.without_snippet().to_string(),
            })
        })
}

/// `speaker-<node>.yaml`, with anything but `[A-Za-z0-9.-]` replaced so that a node
/// name can never escape the status directory.
pub fn speaker_file(node: &str) -> String {
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("speaker-{}.yaml", safe.trim_start_matches('.'))
}

/// `status/speaker-<node>.yaml` (see [`speaker_file`]); temporary files start with a dot.
fn is_speaker_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("speaker-") && n.ends_with(".yaml"))
}

fn is_yaml(p: &Path) -> bool {
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    !hidden && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// The user's objects of every readable file, in file order, the first of each
/// (kind, namespace, name) kept and the others reported, sorted as every source
/// hands them out.
fn inputs_snapshot<S: ServiceView>(
    files: &[PathBuf],
    cached: &BTreeMap<PathBuf, CachedFile<S>>,
    mut errors: Vec<SourceError>,
) -> (ClusterSnapshot<S>, Vec<SourceError>) {
    let mut seen: FoldMap<(&'static str, Option<&str>, &str), (&PathBuf, u32)> = FoldMap::default();
    let mut accepted: Vec<&Object<S>> = Vec::new();
    let origin = |file: &PathBuf, line: u32| Origin {
        file: file.as_path().into(),
        line: line.into(),
    };
    for file in files {
        let Some((_, objects, yaml_errors)) = cached.get(file) else {
            continue;
        };
        errors.extend(yaml_errors.iter().cloned().map(SourceError::Yaml));
        for (line, obj) in objects {
            let key = (obj.kind(), obj.namespace(), obj.name().unwrap_or_default());
            if let Some((first_file, first_line)) = seen.get(&key) {
                errors.push(SourceError::Duplicate {
                    kind: obj.kind(),
                    name: match key.1 {
                        Some(ns) => format!("{ns}/{}", key.2),
                        None => key.2.to_string(),
                    },
                    first: origin(first_file, *first_line),
                    second: origin(file, *line),
                });
                continue;
            }
            seen.insert(key, (file, *line));
            accepted.push(obj);
        }
    }
    let mut snap = ClusterSnapshot::default();
    snap.reserve_for(accepted.iter().map(|o| o.kind()));
    for obj in accepted {
        snap.add(obj.clone());
    }
    snap.normalize();
    (snap, errors)
}

/// A map with foldhash: these maps are rebuilt on every reload, over keys the
/// user's own files and the controller wrote (SipHash was 4% of a reload).
type FoldMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The Services as parsed (before their status is put on), sorted by namespace
/// and name as every snapshot is.
struct Inputs<S> {
    services: Arc<Vec<Arc<S>>>,
    /// By address; only when the list is not the last load's (then a Service's
    /// place may have moved).
    by_ptr: Option<FoldMap<usize, usize>>,
}

impl<S: ServiceView> Inputs<S> {
    /// `reused`: the very list of the last load, so every Service still there is
    /// at the place it was.
    fn new(services: Arc<Vec<Arc<S>>>, reused: bool) -> Self {
        let by_ptr = (!reused).then(|| {
            services
                .iter()
                .enumerate()
                .map(|(i, svc)| (Arc::as_ptr(svc) as usize, i))
                .collect()
        });
        Inputs { services, by_ptr }
    }

    /// Where the Service an entry was made from is now, if it is still here.
    fn find(&self, o: &Overlaid<S>) -> Option<usize> {
        if self
            .services
            .get(o.at as usize)
            .is_some_and(|s| Arc::ptr_eq(s, &o.input))
        {
            return Some(o.at as usize);
        }
        self.by_ptr
            .as_ref()?
            .get(&(Arc::as_ptr(&o.input) as usize))
            .copied()
    }

    /// The record put on the Service it is for, and that Service's place; `None`
    /// for a Service that is not here (any more).
    fn put_status(&self, rec: &ServiceStatusRecord) -> Option<(usize, Arc<S>)> {
        let at = self.by_name(&rec.namespace, &rec.name)?;
        Some((at, Arc::new(self.services[at].with_status(rec))))
    }

    /// The place of the Service a record is for (a binary search: a map of
    /// 10,000 names per reload cost more than the reload's one new record).
    fn by_name(&self, namespace: &str, name: &str) -> Option<usize> {
        let want = (Some(namespace), Some(name));
        self.services
            .binary_search_by(|s| (s.namespace(), s.name()).cmp(&want))
            .ok()
    }
}

/// Puts the controller's output back on the Services, as the API server would hold
/// it, so that consumers read Service status the same way from either source. A
/// Service whose parsed object and record text are both the ones of the last load
/// gets the last load's result back: the same `Arc`, so that the speaker's caches
/// (keyed by pointer) see one changed Service, not 10,000 new ones.
fn overlay_services<S: ServiceView>(
    inputs: &Inputs<S>,
    status: Records<Option<(usize, Arc<S>)>>,
    cache: &mut OverlayCache<S>,
) -> Vec<Arc<S>> {
    let mut last = std::mem::take(&mut cache.entries);
    let mut next = Vec::with_capacity(status.order.len());
    let mut out: Vec<Option<Arc<S>>> = vec![None; inputs.services.len()];
    let mut parsed = status.parsed.into_iter();
    for r in status.order {
        match r {
            Scanned::Known(j) => {
                let Some(mut o) = last.get_mut(j).and_then(Option::take) else {
                    continue;
                };
                let Some(at) = inputs.find(&o) else { continue };
                out[at] = Some(Arc::clone(&o.out));
                let Ok(at32) = u32::try_from(at) else {
                    continue;
                };
                o.at = at32;
                next.push(Some(o));
            }
            Scanned::Fresh(key) => {
                let Some(made) = parsed.next() else { break };
                let Some((at, o)) = made else { continue };
                let input = Arc::clone(&inputs.services[at]);
                out[at] = Some(Arc::clone(&o));
                // (A record or a list past 4 GiB entries is parsed each time.)
                if let Some(((_, hash), Ok(len32), Ok(at32))) =
                    key.map(|k| (k, u32::try_from(k.0), u32::try_from(at)))
                {
                    next.push(Some(Overlaid {
                        hash,
                        input,
                        out: o,
                        len: len32,
                        at: at32,
                    }));
                }
            }
        }
    }
    cache.entries = next;
    inputs
        .services
        .iter()
        .zip(out)
        .map(|(input, o)| o.unwrap_or_else(|| Arc::clone(input)))
        .collect()
}

/// The last load's overlaid Services, in the order of their records in the file
/// (`None` once a load has taken one back).
#[derive(Debug)]
struct OverlayCache<S> {
    entries: Vec<Option<Overlaid<S>>>,
}

/// One overlaid Service, the key of the record put on it, and the parsed Service
/// it was made from (held, so that its address cannot be reused by another while
/// the entry lives), and its place in the list, as of the load it was last used in.
#[derive(Debug)]
struct Overlaid<S> {
    /// The record key's hash (its length is `len`): 32 bytes an entry, not 40.
    hash: u64,
    input: Arc<S>,
    out: Arc<S>,
    len: u32,
    at: u32,
}

impl<S> Overlaid<S> {
    fn key(&self) -> RecordKey {
        (self.len as usize, self.hash)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(records: &[ServiceStatusRecord]) -> String {
        serde_saphyr::to_string(&ServicesStatusFile {
            services: records.to_vec(),
        })
        .unwrap()
    }

    fn rec(name: &str, ip: &str, message: &str) -> ServiceStatusRecord {
        let mut r: ServiceStatusRecord = serde_saphyr::from_str(&format!(
            "namespace: default\nname: {name}\nannotations: {{ferrolb.io/ip-allocated-from-pool: p}}\n\
loadBalancer: {{ingress: [{{ip: '{ip}'}}]}}\nconditions: [{{type: t, status: 'True', reason: r, lastTransitionTime: '2026-01-01T00:00:00Z', message: m}}]\n"
        ))
        .unwrap();
        r.conditions[0].message = message.into();
        r
    }

    fn full(text: &str) -> Vec<ServiceStatusRecord> {
        parse_status::<ServicesStatusFile>(Path::new("s.yaml"), text)
            .unwrap()
            .unwrap_or_default()
            .services
    }

    fn cached(text: &str) -> Option<Vec<ServiceStatusRecord>> {
        scan_records(text.as_bytes(), BLOCK, |_| None, |r| r)
            .unwrap()
            .map(|r| {
                assert!(
                    r.order.iter().all(|s| matches!(s, Scanned::Fresh(Some(_)))),
                    "not parsed with a key: {:?}",
                    r.order
                );
                r.parsed
            })
    }

    #[test]
    fn only_the_records_asked_for_are_parsed() {
        let mut records = vec![rec("a", "10.0.0.1", "one"), rec("b", "10.0.0.2", "two")];
        let keys = |text: &str| -> Vec<RecordKey> {
            let mut keys = Vec::new();
            let got = scan_records(
                text.as_bytes(),
                BLOCK,
                |k| {
                    keys.push(*k);
                    Some(keys.len() - 1)
                },
                |r| r,
            )
            .unwrap()
            .unwrap();
            assert!(got.parsed.is_empty(), "parsed unasked: {:?}", got.parsed);
            keys
        };
        let before = keys(&file(&records));
        records[1].load_balancer = Default::default();
        let text = file(&records);
        let after = keys(&text);
        assert_eq!(after[0], before[0], "unchanged text, same key");
        assert_ne!(after[1], before[1], "changed text, new key");
        let got = scan_records(
            text.as_bytes(),
            BLOCK,
            |k| before.iter().position(|b| b == k),
            |r| r,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got.order,
            vec![Scanned::Known(0), Scanned::Fresh(Some(after[1]))]
        );
        assert_eq!(got.parsed, vec![records[1].clone()]);
    }

    #[test]
    fn records_parsed_one_by_one_equal_the_whole_file_after_each_change() {
        let mut records = vec![
            rec("a", "10.0.0.1", "plain"),
            rec("b", "10.0.0.2", "two\nlines: and: colons"),
            rec("c", "10.0.0.3", "  leading spaces and a trailing one "),
        ];
        type Step = Box<dyn Fn(&mut Vec<ServiceStatusRecord>)>;
        let steps: Vec<Step> = vec![
            Box::new(|_| {}),
            Box::new(|r| r.push(rec("d", "10.0.0.4", "new"))),
            Box::new(|r| r[1].load_balancer = Default::default()),
            Box::new(|r| {
                r.remove(0);
            }),
            Box::new(|r| r.insert(1, r[0].clone())),
            Box::new(|r| r.clear()),
            Box::new(|r| r.push(rec("e", "fd00::1", "- a dash first\n- and second"))),
        ];
        for (i, step) in steps.iter().enumerate() {
            step(&mut records);
            let text = file(&records);
            let got = cached(&text);
            if records.is_empty() {
                assert!(full(&text).is_empty());
                continue;
            }
            assert_eq!(got.as_ref(), Some(&records), "step {i}:\n{text}");
            assert_eq!(full(&text), records, "step {i}");
        }
    }

    #[test]
    fn a_file_not_laid_out_as_we_write_it_is_parsed_whole() {
        for text in [
            "services: []\n",
            "# comment\nservices:\n- namespace: default\n  name: a\n",
            "services:\n  - namespace: default\n    name: a\n",
            "services:\n- &x {namespace: default, name: a}\n- *x\n",
            "services:\n- namespace: default\n  name: a\n---\n",
            "services:\n- namespace: default\n  name: [\n",
        ] {
            assert_eq!(cached(text), None, "{text}");
        }
    }
}
