//! `ferrolb convert`: MetalLB objects (`metallb.io/v1beta1`, `v1beta2`) to FerroLB's.
//!
//! The kinds and field names are the same, so a conversion is mostly a new
//! apiVersion and namespace. What FerroLB's schema does not have is dropped, and
//! every drop is reported: the walk follows the generated CRD schema, so the
//! report stays right as the types change.

use serde_json::{Map, Value};

use crate::v1beta1::API_VERSION;

/// MetalLB's default namespace, moved to [`Options::namespace`].
pub const METALLB_NAMESPACE: &str = "metallb-system";

/// How to convert.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace for FerroLB's objects (and what `metallb-system` becomes).
    pub namespace: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: "ferrolb-system".into(),
        }
    }
}

/// The converted YAML stream and what the user should know about it.
#[derive(Clone, Debug, Default)]
pub struct Converted {
    /// Multi-document YAML.
    pub yaml: String,
    /// One line per dropped or changed thing, naming the object and field.
    pub warnings: Vec<String>,
}

/// A document that is not YAML, or not a Kubernetes object.
#[derive(Debug, thiserror::Error)]
#[error("document starting on line {line}: {message}")]
pub struct ConvertError {
    /// 1-based line where the document starts.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Converts every document of `input`. Objects of other API groups pass through
/// (Secrets holding BGP passwords move namespace with the rest).
pub fn convert(input: &str, opts: &Options) -> Result<Converted, ConvertError> {
    let schemas = schemas();
    let mut out = Converted::default();
    let mut docs = Vec::new();
    for (line, text) in crate::source::yaml::documents(input) {
        let err = |message: String| ConvertError { line, message };
        let mut obj: Value = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
        let (Some(api), Some(kind)) = (str_at(&obj, "apiVersion"), str_at(&obj, "kind")) else {
            return Err(err("apiVersion and kind are required".into()));
        };
        let name = format!(
            "{kind} {}",
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        let group = api.split('/').next().unwrap_or_default();
        if group == "metallb.io" {
            // Status kinds are written by the speakers; copies would only be stale.
            let status_kind = matches!(kind.as_str(), "ServiceL2Status" | "ServiceBGPStatus");
            let schema = schemas.iter().find(|(k, _)| *k == kind).map(|(_, s)| s);
            let Some(schema) = schema.filter(|_| !status_kind) else {
                out.warnings.push(format!(
                    "{name}: dropped: FerroLB has no {kind} (status kinds are written by the speakers)"
                ));
                continue;
            };
            convert_metallb(&mut obj, schema, opts, &name, &mut out.warnings);
        } else if group.ends_with("metallb.io") {
            out.warnings.push(format!(
                "{name}: dropped: {api} is not a MetalLB configuration kind FerroLB reads"
            ));
            continue;
        } else if api == "v1" && kind == "ConfigMap" && is_legacy_config(&obj) {
            out.warnings.push(format!(
                "{name}: dropped: MetalLB's legacy ConfigMap; convert it to CRs with MetalLB's configmaptocrs first, then run this on the result"
            ));
            continue;
        } else {
            move_namespace(&mut obj, opts, &name, &mut out.warnings);
        }
        docs.push(obj);
    }
    let mut yaml = String::new();
    for d in &docs {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(d).map_err(|e| ConvertError {
            line: 0,
            message: e.to_string(),
        })?);
    }
    out.yaml = yaml;
    Ok(out)
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn is_legacy_config(obj: &Value) -> bool {
    obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(METALLB_NAMESPACE)
        && obj.pointer("/data/config").is_some()
}

/// (kind, openAPIV3Schema) of every FerroLB CRD.
fn schemas() -> Vec<(String, Value)> {
    crate::crdgen::all()
        .into_iter()
        .filter_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            let schema = crd
                .spec
                .versions
                .first()?
                .schema
                .as_ref()?
                .open_api_v3_schema
                .as_ref()?;
            Some((kind, serde_json::to_value(schema).ok()?))
        })
        .collect()
}

fn move_namespace(obj: &mut Value, opts: &Options, name: &str, warnings: &mut Vec<String>) {
    if let Some(ns) = obj.pointer_mut("/metadata/namespace")
        && ns.as_str() == Some(METALLB_NAMESPACE)
    {
        *ns = Value::String(opts.namespace.clone());
        warnings.push(format!(
            "{name}: namespace {METALLB_NAMESPACE} -> {}",
            opts.namespace
        ));
    }
}

fn convert_metallb(
    obj: &mut Value,
    schema: &Value,
    opts: &Options,
    name: &str,
    warnings: &mut Vec<String>,
) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    map.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    // The API server's bookkeeping and the status are written anew by the cluster.
    map.remove("status");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(m) = meta.as_object_mut() {
        m.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations"));
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        match m.get("namespace").and_then(Value::as_str) {
            // MetalLB reads its namespace only, so objects without one were applied there.
            None | Some(METALLB_NAMESPACE) => {
                m.insert("namespace".into(), Value::String(opts.namespace.clone()));
            }
            Some(other) => warnings.push(format!(
                "{name}: kept namespace {other}; FerroLB reads only its own namespace ({})",
                opts.namespace
            )),
        }
    }
    if let Some(ns) = obj.pointer_mut("/spec/passwordSecret/namespace")
        && ns.as_str() == Some(METALLB_NAMESPACE)
    {
        *ns = Value::String(opts.namespace.clone());
    }
    if let (Some(spec), Some(spec_schema)) = (
        obj.get_mut("spec"),
        schema.pointer("/properties/spec").cloned(),
    ) {
        prune(spec, &spec_schema, "spec", name, warnings);
    }
}

/// Removes what `schema` does not allow, reporting each removal.
fn prune(v: &mut Value, schema: &Value, path: &str, name: &str, warnings: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && extra.is_none() {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub = props.and_then(|p| p.get(&k)).or(extra);
                let here = format!("{path}.{k}");
                match sub {
                    Some(s) => {
                        if let Some(child) = map.get_mut(&k) {
                            prune(child, s, &here, name, warnings);
                        }
                    }
                    None => {
                        map.remove(&k);
                        warnings.push(format!("{name}: dropped {here}: FerroLB has no such field"));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item, s, &format!("{path}[{i}]"), name, warnings);
                }
            }
        }
        _ => {}
    }
}
