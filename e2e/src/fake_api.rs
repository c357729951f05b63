//! A stand-in Kubernetes API server on loopback for the binaries' kube mode (no
//! kube-apiserver exists here): it lists the objects it was given, holds watches
//! open and sends them the events [`FakeApi::push`] is given, answers writes by
//! echoing them, and records every request so that tests can assert on what a
//! binary sent.
//!
//! It speaks just enough HTTP/1.1 for kube-rs: keep-alive, Content-Length bodies,
//! chunked watch responses.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query string.
    pub query: String,
    /// The JSON body (`Null` when there is none).
    pub body: Value,
}

/// A running fake API server; stops when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    state: Arc<State>,
}

/// What the connections share.
#[derive(Default)]
struct State {
    /// The objects lists return, by collection.
    store: Mutex<BTreeMap<Collection, Vec<Value>>>,
    /// Objects written through the API, by object path.
    written: Written,
    /// Open watches: their collection and where their events go.
    watches: Mutex<Vec<(Collection, mpsc::Sender<Value>)>>,
}

/// Whether a request for collection `c` covers objects of collection `k` (a
/// cluster-wide request covers every namespace).
fn covers(c: &Collection, k: &Collection) -> bool {
    k.0 == c.0 && k.2 == c.2 && (c.1.is_none() || k.1 == c.1)
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Where an object's collection lives: `(api prefix, namespace, plural)`.
type Collection = (String, Option<String>, String);

fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k.ends_with('s') {
        format!("{k}es")
    } else {
        format!("{k}s")
    }
}

fn prefix(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    }
}

fn collection_of(obj: &Value) -> Option<Collection> {
    let api = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    Some((prefix(api), ns, plural(kind)))
}

/// Splits a request path into its collection and the object name, if any:
/// `/apis/g/v/namespaces/ns/plural[/name[/status]]`, `/api/v1/plural[/name]`.
fn parse_path(path: &str) -> Option<(Collection, Option<String>)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (pre, rest) = match *segs.first()? {
        "api" => (format!("/api/{}", segs.get(1)?), segs.get(2..)?),
        "apis" => (
            format!("/apis/{}/{}", segs.get(1)?, segs.get(2)?),
            segs.get(3..)?,
        ),
        _ => return None,
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] => Some((
            (pre, Some((*ns).to_string()), (*plural).to_string()),
            tail.first().map(|s| (*s).to_string()),
        )),
        [plural, tail @ ..] => Some((
            (pre, None, (*plural).to_string()),
            tail.first().map(|s| (*s).to_string()),
        )),
        [] => None,
    }
}

impl FakeApi {
    /// Serves `objects` (each with apiVersion, kind and metadata) on 127.0.0.1.
    pub fn start(objects: Vec<Value>) -> anyhow::Result<FakeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the fake API server")?;
        FakeApi::serve_on(listener, objects)
    }

    /// [`FakeApi::start`] on the loopback of network namespace `netns` (a name
    /// under /run/netns), for binaries running there. Only the listening socket
    /// is made there, by a thread that enters the namespace and ends.
    pub fn start_in(netns: &str, objects: Vec<Value>) -> anyhow::Result<FakeApi> {
        let listener = crate::scenario::netns::run_in(netns, || {
            TcpListener::bind("127.0.0.1:0").context("binding the fake API server")
        })??;
        FakeApi::serve_on(listener, objects)
    }

    fn serve_on(listener: TcpListener, objects: Vec<Value>) -> anyhow::Result<FakeApi> {
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        {
            let mut store = state.store.lock().unwrap_or_else(|e| e.into_inner());
            for o in objects {
                let c = collection_of(&o).context("an object without apiVersion or kind")?;
                store.entry(c).or_default().push(o);
            }
        }
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, st) = (requests.clone(), stop.clone(), state.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_nodelay(true);
                let (st, r, s) = (st.clone(), r.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &st, &r, &s);
                });
            }
        });
        Ok(FakeApi {
            addr,
            requests,
            stop,
            state,
        })
    }

    /// Adds or replaces `object` (by namespace and name) and sends every open
    /// watch of its collection an `ADDED` or `MODIFIED` event. Returns how many
    /// watches it was sent to.
    pub fn push(&self, object: Value) -> anyhow::Result<usize> {
        self.push_at(object).map(|(n, _)| n)
    }

    /// As [`FakeApi::push`], with the time the event was handed to the watches
    /// (after the store took the object: what the API server does before its
    /// watchers hear of a change is not the speaker's time).
    pub fn push_at(
        &self,
        mut object: Value,
    ) -> anyhow::Result<(usize, k8s_openapi::jiff::Timestamp)> {
        let c = collection_of(&object).context("an object without apiVersion or kind")?;
        let mut store = self.state.store.lock().unwrap_or_else(|e| e.into_inner());
        let version = store.values().map(Vec::len).sum::<usize>() + 2;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let list = store.entry(c.clone()).or_default();
        let name = object.pointer("/metadata/name").cloned();
        let kind = match list
            .iter_mut()
            .find(|o| o.pointer("/metadata/name") == name.as_ref())
        {
            Some(old) => {
                *old = object.clone();
                "MODIFIED"
            }
            None => {
                list.push(object.clone());
                "ADDED"
            }
        };
        drop(store);
        let event = json!({"type": kind, "object": object});
        let mut watches = self.state.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.retain(|(_, tx)| tx.send(Value::Null).is_ok());
        let at = k8s_openapi::jiff::Timestamp::now();
        let mut sent = 0;
        for (wc, tx) in watches.iter() {
            if covers(wc, &c) && tx.send(event.clone()).is_ok() {
                sent += 1;
            }
        }
        Ok((sent, at))
    }

    /// Writes a kubeconfig for this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: 'http://{}'}}}}]\n\
users: [{{name: fake, user: {{token: fake}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n\
current-context: fake\n",
                self.addr
            ),
        )?;
        Ok(path)
    }

    /// How many requests have come so far.
    pub fn request_count(&self) -> usize {
        self.requests
            .lock()
            .map_or_else(|e| e.into_inner().len(), |r| r.len())
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

/// The page of `items` a list query asks for (`limit`, `continue`: here the
/// offset of the next item), and the offset after it when there is more.
fn paginate<'a>(items: &'a [&'a Value], query: &str) -> (&'a [&'a Value], Option<usize>) {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let from = param("continue").unwrap_or(0).min(items.len());
    let to = match param("limit") {
        Some(l) if l > 0 => (from + l).min(items.len()),
        _ => items.len(),
    };
    (&items[from..to], (to < items.len()).then_some(to))
}

fn respond(conn: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(body)?;
    let reason = if code == 200 { "OK" } else { "Error" };
    // One write per response (and per chunk below): headers and body in separate
    // segments meet Nagle and the client's delayed ACK, 40 ms per request.
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .into_bytes();
    out.extend_from_slice(&bytes);
    conn.write_all(&out)?;
    conn.flush()
}

/// Objects written through the API, by object path.
type Written = Mutex<BTreeMap<String, Value>>;

/// One chunk of a chunked response.
fn chunk(out: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut bytes = format!("{:x}\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n");
    out.write_all(&bytes)?;
    out.flush()
}

fn serve(
    conn: TcpStream,
    state: &State,
    requests: &Mutex<Vec<Recorded>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let written = &state.written;
    conn.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if let Ok(mut r) = requests.lock() {
            r.push(Recorded {
                method: method.clone(),
                path: path.to_string(),
                query: query.to_string(),
                body: body.clone(),
            });
        }
        let parsed = parse_path(path);
        match (method.as_str(), parsed) {
            ("GET", Some((c, None)))
                if query.contains("watch=true") || query.contains("watch=1") =>
            {
                // Only what push() sends: the binaries act on their initial lists
                // and on those events.
                let (tx, rx) = mpsc::channel();
                state
                    .watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((c, tx));
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )?;
                out.flush()?;
                // The client closing the watch is seen by a reader of its own, so
                // that events go out the moment they are pushed.
                let closed = Arc::new(AtomicBool::new(false));
                let seen = closed.clone();
                std::thread::spawn(move || {
                    let mut b = [0u8; 1];
                    loop {
                        match reader.read(&mut b) {
                            Ok(0) => break,
                            Err(e)
                                if !matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                break;
                            }
                            _ => {}
                        }
                    }
                    seen.store(true, Ordering::SeqCst);
                });
                while !stop.load(Ordering::SeqCst) && !closed.load(Ordering::SeqCst) {
                    match rx.recv_timeout(Duration::from_millis(100)) {
                        // push() probes with Null to drop closed watches.
                        Ok(Value::Null) => {}
                        Ok(ev) => {
                            let mut line = serde_json::to_vec(&ev)?;
                            line.push(b'\n');
                            chunk(&mut out, &line)?;
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                return Ok(());
            }
            ("GET", Some((c, None))) => {
                let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
                let items: Vec<&Value> = store
                    .iter()
                    .filter(|(k, _)| covers(&c, k))
                    .flat_map(|(_, v)| v.iter())
                    .collect();
                // Pages as kube-apiserver hands them out (kube-rs asks for 500 at a
                // time): a client never holds a 10,000-object list at once there.
                let (page, next) = paginate(&items, query);
                let mut meta = json!({"resourceVersion": "1"});
                if let Some(next) = next {
                    meta["continue"] = json!(next.to_string());
                    meta["remainingItemCount"] = json!(items.len() - next);
                }
                respond(
                    &mut out,
                    200,
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": meta, "items": page}),
                )?;
            }
            ("GET", _) => {
                respond(
                    &mut out,
                    404,
                    &json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{path} not found")}),
                )?;
            }
            ("DELETE", _) => {
                respond(
                    &mut out,
                    200,
                    &json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 200}),
                )?;
            }
            (_, Some(((pre, ns, plural), Some(name)))) => {
                // A write: merged into what was written before and returned whole,
                // as the API server returns the stored object (with the schema's
                // `spec: {}` default of FerroLB's status kinds).
                let key = format!("{pre}/{}/{plural}/{name}", ns.clone().unwrap_or_default());
                let status_only = path.ends_with("/status");
                let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
                let obj = w
                    .entry(key)
                    .or_insert_with(|| json!({"metadata": {}, "spec": {}}));
                if status_only {
                    obj["status"] = body.get("status").cloned().unwrap_or(Value::Null);
                } else if let Some(fields) = body.as_object() {
                    for (k, v) in fields {
                        if k == "metadata" {
                            if let (Some(m), Some(new)) =
                                (obj["metadata"].as_object_mut(), v.as_object())
                            {
                                m.extend(new.clone());
                            }
                        } else {
                            obj[k.as_str()] = v.clone();
                        }
                    }
                }
                for k in ["apiVersion", "kind"] {
                    if let Some(v) = body.get(k) {
                        obj[k] = v.clone();
                    }
                }
                let meta = &mut obj["metadata"];
                meta["name"] = json!(name);
                if let Some(ns) = ns {
                    meta["namespace"] = json!(ns);
                }
                meta["resourceVersion"] = json!("2");
                meta["uid"] = json!("00000000-0000-4000-8000-000000000001");
                let reply = obj.clone();
                drop(w);
                respond(&mut out, 200, &reply)?;
            }
            _ => {
                // A create (POST to a collection, e.g. an Event): echoed.
                let mut obj = body.clone();
                if obj.is_object() {
                    obj["metadata"]["resourceVersion"] = json!("2");
                    if obj["metadata"].get("name").is_none() {
                        obj["metadata"]["name"] = json!("created");
                    }
                }
                respond(&mut out, 200, &obj)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_come_in_the_pages_asked_for() {
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let items: Vec<&Value> = all.iter().collect();
        assert_eq!(paginate(&items, "").0.len(), 5);
        assert_eq!(paginate(&items, "").1, None);
        let (page, next) = paginate(&items, "limit=2&resourceVersion=0");
        assert_eq!((page, next), (&items[0..2], Some(2)));
        let (page, next) = paginate(&items, "limit=2&continue=4");
        assert_eq!((page, next), (&items[4..5], None));
        assert_eq!(paginate(&items, "continue=9").0.len(), 0);
    }

    #[test]
    fn paths_name_their_collection() {
        assert_eq!(
            parse_path(
                "/apis/ferrolb.io/v1beta1/namespaces/ferrolb-system/speakerstatuses/n1/status"
            ),
            Some((
                (
                    "/apis/ferrolb.io/v1beta1".into(),
                    Some("ferrolb-system".into()),
                    "speakerstatuses".into()
                ),
                Some("n1".into())
            ))
        );
        assert_eq!(
            parse_path("/api/v1/services"),
            Some((("/api/v1".into(), None, "services".into()), None))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces"),
            Some((("/api/v1".into(), None, "namespaces".into()), None))
        );
        assert_eq!(plural("ServiceBGPStatus"), "servicebgpstatuses");
        assert_eq!(plural("EndpointSlice"), "endpointslices");
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}});
        assert_eq!(
            collection_of(&svc),
            Some(("/api/v1".into(), Some("default".into()), "services".into()))
        );
    }
}
