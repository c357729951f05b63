//! Multi-document Kubernetes YAML to typed objects, with file and line on every error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;

use crate::services::ServiceView;
use crate::v1beta1::{
    API_VERSION, BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};

/// One object the file source understands, each Service kept as `S` (see
/// [`ServiceView`]).
/// Boxed or shared: the parse cache keeps every object of every file, and inline
/// (the size of a Node, 1.5 KB) 10,000 Services held 15 MB of mostly padding.
#[derive(Clone, Debug, PartialEq)]
pub enum Object<S = Service> {
    /// `ferrolb.io/v1beta1` IPAddressPool.
    IPAddressPool(Box<IPAddressPool>),
    /// `ferrolb.io/v1beta1` L2Advertisement.
    L2Advertisement(Box<L2Advertisement>),
    /// `ferrolb.io/v1beta1` BGPAdvertisement.
    BGPAdvertisement(Box<BGPAdvertisement>),
    /// `ferrolb.io/v1beta1` BGPPeer.
    BGPPeer(Box<BGPPeer>),
    /// `ferrolb.io/v1beta1` Community.
    Community(Box<Community>),
    /// `ferrolb.io/v1beta1` BFDProfile.
    BFDProfile(Box<BFDProfile>),
    /// `v1` Service. Shared: the file source hands the same one to every snapshot
    /// until its file changes.
    Service(Arc<S>),
    /// `v1` Node.
    Node(Box<Node>),
    /// `v1` Namespace.
    Namespace(Box<Namespace>),
    /// `v1` Secret.
    Secret(Box<Secret>),
    /// `discovery.k8s.io/v1` EndpointSlice, shared as Services are.
    EndpointSlice(Arc<EndpointSlice>),
}

/// A problem in a YAML file, with its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct YamlError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line in the file.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file (one allocation per file, shared by its objects: the parse
    /// cache keeps an origin per object).
    pub file: Arc<Path>,
    /// 1-based line where the document starts.
    pub line: u64,
}

/// Splits a YAML stream into documents, with the 1-based line each body starts on.
/// A document marker is `---` (or `...`) at the start of a line; Kubernetes objects
/// are mappings, so a marker can never sit inside one at column 0.
pub(crate) fn documents(text: &str) -> Vec<(u64, String)> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut start = 1u64;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        let is_marker = |m: &str| {
            line == m || line.starts_with(&format!("{m} ")) || line.starts_with(&format!("{m}\t"))
        };
        if is_marker("---") || is_marker("...") {
            docs.push((start, std::mem::take(&mut cur)));
            // Content after `--- ` on the same line belongs to the next document.
            let rest = line[3..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') && line.starts_with("---") {
                cur.push_str(rest);
                cur.push('\n');
                start = n;
            } else {
                start = n + 1;
            }
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    docs.push((start, cur));
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

fn located(file: &Path, offset: u64, e: &serde_saphyr::Error) -> YamlError {
    let (line, column) = e
        .location()
        .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    let text = e.without_snippet().to_string();
    // The library prefixes its own "error: line L column C: "; we print the place once.
    let message = text
        .strip_prefix("error: ")
        .map(
            |t| match t.strip_prefix("line ").and_then(|t| t.split_once(": ")) {
                Some((_, m)) => m,
                None => t,
            },
        )
        .unwrap_or(&text)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    YamlError {
        file: file.to_path_buf(),
        line: offset + line - 1,
        column,
        message,
    }
}

fn typed<T: DeserializeOwned>(file: &Path, offset: u64, doc: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str::<T>(doc).map_err(|e| located(file, offset, &e))
}

/// Namespaced kinds without a namespace land in `default`, as with kubectl.
fn default_namespace(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    if meta.namespace.as_deref().unwrap_or_default().is_empty() {
        meta.namespace = Some("default".into());
    }
}

/// Parses every document of one file. Good documents come back even when others
/// are broken.
pub fn parse_file(file: &Path, text: &str) -> (Vec<(Origin, Object)>, Vec<YamlError>) {
    parse_file_as(file, text)
}

/// [`parse_file`], each Service kept as `S` as soon as it is parsed (never all
/// of a file's Services whole at once).
pub fn parse_file_as<S: ServiceView>(
    file: &Path,
    text: &str,
) -> (Vec<(Origin, Object<S>)>, Vec<YamlError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    let shared: Arc<Path> = file.into();
    // YAML breaks lines at CR, LF and CRLF; count them all the same way here, or
    // a lone CR shifts every line number after it (and hides `---` markers).
    let text: std::borrow::Cow<'_, str> = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    };
    for (offset, doc) in documents(&text) {
        let err = |message: String| YamlError {
            file: file.to_path_buf(),
            line: offset,
            column: 1,
            message,
        };
        let head: serde_json::Value = match serde_saphyr::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                errors.push(located(file, offset, &e));
                continue;
            }
        };
        let api_version = head
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = head
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            errors.push(err(
                "not a Kubernetes object: apiVersion and kind are required".into(),
            ));
            continue;
        }
        // MetalLB lets a spec with only optional fields be left out; the API server
        // stores `spec: {}` then (a schema default), and so does this source.
        let doc = if head.get("spec").is_none()
            && crate::crdgen::SPEC_OPTIONAL.contains(&kind)
            && api_version == API_VERSION
        {
            format!("{doc}spec: {{}}\n")
        } else {
            doc
        };
        let parsed: Result<Object, YamlError> = match (api_version, kind) {
            (API_VERSION, "IPAddressPool") => {
                typed(file, offset, &doc).map(|o| Object::IPAddressPool(Box::new(o)))
            }
            (API_VERSION, "L2Advertisement") => {
                typed(file, offset, &doc).map(|o| Object::L2Advertisement(Box::new(o)))
            }
            (API_VERSION, "BGPAdvertisement") => {
                typed(file, offset, &doc).map(|o| Object::BGPAdvertisement(Box::new(o)))
            }
            (API_VERSION, "BGPPeer") => {
                typed(file, offset, &doc).map(|o| Object::BGPPeer(Box::new(o)))
            }
            (API_VERSION, "Community") => {
                typed(file, offset, &doc).map(|o| Object::Community(Box::new(o)))
            }
            (API_VERSION, "BFDProfile") => {
                typed(file, offset, &doc).map(|o| Object::BFDProfile(Box::new(o)))
            }
            ("v1", "Service") => typed(file, offset, &doc).map(|o| Object::Service(Arc::new(o))),
            ("v1", "Node") => typed(file, offset, &doc).map(|o| Object::Node(Box::new(o))),
            ("v1", "Namespace") => {
                typed(file, offset, &doc).map(|o| Object::Namespace(Box::new(o)))
            }
            ("v1", "Secret") => typed(file, offset, &doc).map(|o| Object::Secret(Box::new(o))),
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                typed(file, offset, &doc).map(|o| Object::EndpointSlice(Arc::new(o)))
            }
            (v, k) if v.starts_with("metallb.io/") => Err(err(format!(
                "{k} has apiVersion {v}: FerroLB reads {API_VERSION} (change the apiVersion; the fields are the same)"
            ))),
            (v, k) => Err(err(format!(
                "{v} {k} is not read by FerroLB (it reads {API_VERSION} kinds, v1 Service, Node, Namespace, Secret and discovery.k8s.io/v1 EndpointSlice)"
            ))),
        };
        match parsed {
            Ok(mut o) => {
                o.fix_namespace();
                let missing_name = o.meta().name.as_deref().unwrap_or_default().is_empty();
                if missing_name {
                    errors.push(err(format!("{kind} has no metadata.name")));
                    continue;
                }
                objects.push((
                    Origin {
                        file: shared.clone(),
                        line: offset,
                    },
                    o.project(),
                ));
            }
            Err(e) => errors.push(e),
        }
    }
    // The parse cache keeps this list for as long as the file is unchanged: 10,000
    // Services grew it to room for 16,384 (250 KB unused).
    objects.shrink_to_fit();
    (objects, errors)
}

impl<S: ServiceView> Object<S> {
    /// `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Object::Service(o) => o.namespace(),
            Object::IPAddressPool(o) => o.metadata.namespace.as_deref(),
            Object::L2Advertisement(o) => o.metadata.namespace.as_deref(),
            Object::BGPAdvertisement(o) => o.metadata.namespace.as_deref(),
            Object::BGPPeer(o) => o.metadata.namespace.as_deref(),
            Object::Community(o) => o.metadata.namespace.as_deref(),
            Object::BFDProfile(o) => o.metadata.namespace.as_deref(),
            Object::Node(o) => o.metadata.namespace.as_deref(),
            Object::Namespace(o) => o.metadata.namespace.as_deref(),
            Object::Secret(o) => o.metadata.namespace.as_deref(),
            Object::EndpointSlice(o) => o.metadata.namespace.as_deref(),
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        match self {
            Object::Service(o) => o.name(),
            Object::IPAddressPool(o) => o.metadata.name.as_deref(),
            Object::L2Advertisement(o) => o.metadata.name.as_deref(),
            Object::BGPAdvertisement(o) => o.metadata.name.as_deref(),
            Object::BGPPeer(o) => o.metadata.name.as_deref(),
            Object::Community(o) => o.metadata.name.as_deref(),
            Object::BFDProfile(o) => o.metadata.name.as_deref(),
            Object::Node(o) => o.metadata.name.as_deref(),
            Object::Namespace(o) => o.metadata.name.as_deref(),
            Object::Secret(o) => o.metadata.name.as_deref(),
            Object::EndpointSlice(o) => o.metadata.name.as_deref(),
        }
    }
}

impl<S> Object<S> {
    /// The kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::IPAddressPool(_) => "IPAddressPool",
            Object::L2Advertisement(_) => "L2Advertisement",
            Object::BGPAdvertisement(_) => "BGPAdvertisement",
            Object::BGPPeer(_) => "BGPPeer",
            Object::Community(_) => "Community",
            Object::BFDProfile(_) => "BFDProfile",
            Object::Service(_) => "Service",
            Object::Node(_) => "Node",
            Object::Namespace(_) => "Namespace",
            Object::Secret(_) => "Secret",
            Object::EndpointSlice(_) => "EndpointSlice",
        }
    }
}

impl Object {
    /// The same object, its Service (if it is one) kept as `S`.
    pub fn project<S: ServiceView>(self) -> Object<S> {
        match self {
            Object::Service(o) => Object::Service(S::project(o)),
            Object::IPAddressPool(o) => Object::IPAddressPool(o),
            Object::L2Advertisement(o) => Object::L2Advertisement(o),
            Object::BGPAdvertisement(o) => Object::BGPAdvertisement(o),
            Object::BGPPeer(o) => Object::BGPPeer(o),
            Object::Community(o) => Object::Community(o),
            Object::BFDProfile(o) => Object::BFDProfile(o),
            Object::Node(o) => Object::Node(o),
            Object::Namespace(o) => Object::Namespace(o),
            Object::Secret(o) => Object::Secret(o),
            Object::EndpointSlice(o) => Object::EndpointSlice(o),
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Object::IPAddressPool(o) => &o.metadata,
            Object::L2Advertisement(o) => &o.metadata,
            Object::BGPAdvertisement(o) => &o.metadata,
            Object::BGPPeer(o) => &o.metadata,
            Object::Community(o) => &o.metadata,
            Object::BFDProfile(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
        }
    }

    fn fix_namespace(&mut self) {
        match self {
            Object::IPAddressPool(o) => default_namespace(&mut o.metadata),
            Object::L2Advertisement(o) => default_namespace(&mut o.metadata),
            Object::BGPAdvertisement(o) => default_namespace(&mut o.metadata),
            Object::BGPPeer(o) => default_namespace(&mut o.metadata),
            Object::Community(o) => default_namespace(&mut o.metadata),
            Object::BFDProfile(o) => default_namespace(&mut o.metadata),
            // Just parsed, not shared yet: no copy.
            Object::Service(o) => default_namespace(&mut Arc::make_mut(o).metadata),
            Object::Secret(o) => default_namespace(&mut o.metadata),
            Object::EndpointSlice(o) => default_namespace(&mut Arc::make_mut(o).metadata),
            Object::Node(o) => o.metadata.namespace = None,
            Object::Namespace(o) => o.metadata.namespace = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_keeps_line_numbers() {
        let text = "# head\n---\na: 1\n---\n\n# only a comment\n--- \nb: 2\nc: 3\n...\n";
        let docs = documents(text);
        assert_eq!(
            docs,
            vec![(3, "a: 1\n".to_string()), (8, "b: 2\nc: 3\n".to_string())]
        );
    }

    #[test]
    fn broken_document_reports_file_and_line_and_spares_the_rest() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: banana\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n";
        let (objs, errs) = parse_file(Path::new("x.yaml"), text);
        assert_eq!(objs.len(), 2);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 12, "{}", errs[0]);
        assert!(errs[0].to_string().starts_with("x.yaml:12:"), "{}", errs[0]);
    }

    #[test]
    fn lone_carriage_returns_break_lines_as_yaml_says() {
        // Found by fuzzing (yaml_source): a lone CR is a line break to the YAML
        // parser but not to str::lines, so errors pointed past the end of the file.
        let text = "apiVersion: v1\rkind: Namespace\rmetadata:\r  name: a\r---\rapiVersion: v1\r\nkind: Service\rmetadata:\r  name: s\rspec:\r  ports:\r    - port: banana\r";
        let (objs, errs) = parse_file(Path::new("x.yaml"), text);
        assert_eq!(objs.len(), 1, "{errs:?}");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 12, "{}", errs[0]);
    }

    #[test]
    fn syntax_error_line_is_counted_from_the_file_start() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Node\nmetadata: [\n";
        let (objs, errs) = parse_file(Path::new("x.yaml"), text);
        assert_eq!(objs.len(), 1);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].line >= 8, "{}", errs[0]);
    }

    #[test]
    fn metallb_objects_get_a_migration_hint() {
        let text = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\nspec:\n  addresses: [10.0.0.0/24]\n";
        let (_, errs) = parse_file(Path::new("m.yaml"), text);
        assert!(
            errs[0].message.contains("change the apiVersion"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn namespaced_objects_default_to_the_default_namespace() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n\n  namespace: x\n";
        let (objs, errs) = parse_file(Path::new("d.yaml"), text);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(objs[0].1.meta().namespace.as_deref(), Some("default"));
        assert_eq!(objs[1].1.meta().namespace, None);
    }
}
