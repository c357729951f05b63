//! Where cluster state comes from and where status goes.
//!
//! Two sources feed the same core: `kube` (reflectors on the API server, in the
//! binaries) and [`file`] (a directory of YAML, for standalone mode and the lab).
//! Both implement [`SnapshotSource`] and [`StatusSink`]; nothing below them knows
//! which one is in use.

pub mod file;
pub mod kube;
mod records;
pub mod status;
pub mod yaml;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

pub use file::{FileSource, FileWatch};
pub use yaml::{Object, Origin, YamlError};

use k8s_openapi::api::core::v1::Service;

use crate::snapshot::ClusterSnapshot;
use status::{EventRecord, PoolStatusRecord, ServiceStatusRecord, SpeakerStatusFile};

/// A snapshot with the problems met while reading it (bad files, duplicates).
/// The snapshot holds every object that could be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<S = Service> {
    /// The state.
    pub snapshot: ClusterSnapshot<S>,
    /// Problems; none of them stopped the rest from loading.
    pub errors: Vec<SourceError>,
    /// What the speakers report of themselves (node, findings, BGP sessions; not
    /// their per-Service entries), one entry per running speaker. `None` when the
    /// source was not asked for it or cannot tell: a file source with no speaker
    /// file at all (none has run, or they write elsewhere). `Some` means a node
    /// without an entry runs no speaker.
    pub speakers: Option<Vec<SpeakerStatusFile>>,
}

impl<S> Default for Loaded<S> {
    fn default() -> Self {
        Loaded {
            snapshot: ClusterSnapshot::default(),
            errors: Vec::new(),
            speakers: None,
        }
    }
}

/// Something that yields the current cluster state and every change to it.
pub trait SnapshotSource<S = Service>: Send + Sync {
    /// The latest snapshot; `changed()` on it wakes on every new one.
    fn snapshots(&self) -> watch::Receiver<Arc<Loaded<S>>>;
}

/// Where the controller and speakers write what they decided.
pub trait StatusSink: Send + Sync {
    /// Replaces the address status of every Service.
    fn write_services(
        &self,
        records: &[ServiceStatusRecord],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Replaces the status of every pool.
    fn write_pools(
        &self,
        records: &[PoolStatusRecord],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Replaces one speaker's status.
    fn write_speaker(
        &self,
        status: &SpeakerStatusFile,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// Replaces one speaker's status, `before` being what the last successful
    /// [`StatusSink::write_speaker`] or `update_speaker` wrote: a sink may write
    /// only the difference.
    fn update_speaker(
        &self,
        before: &SpeakerStatusFile,
        status: &SpeakerStatusFile,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = before;
        self.write_speaker(status)
    }
    /// Records Events.
    fn emit_events(
        &self,
        events: &[EventRecord],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// Errors of the sources. Each names the file (and line) or object concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A file or directory could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error, as text (so that errors can be compared and cloned).
        message: String,
    },
    /// A YAML document could not be read.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// Two documents define the same object.
    #[error("{}:{}: {kind} {name} is already defined at {}:{}; this copy is ignored", second.file.display(), second.line, first.file.display(), first.line)]
    Duplicate {
        /// Kind.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// The copy that is used.
        first: Origin,
        /// The copy that is ignored.
        second: Origin,
    },
    /// Status could not be serialized.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What was being written.
        what: String,
        /// Why it failed.
        message: String,
    },
    /// The directory cannot be watched.
    #[error("cannot watch {}: {message}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl SourceError {
    pub(crate) fn io(path: impl Into<PathBuf>, e: &std::io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
