//! A real zanzi server (HTTP and gRPC) on loopback ports for the API tests, and a small JSON
//! client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use zanzi::api::service::Limits;
use zanzi::engine::EngineConfig;
use zanzi::server::{self, ServeConfig};

/// A server running on its own runtime thread, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The gRPC listener's address.
    pub grpc_addr: SocketAddr,
    pub key: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

pub const KEY: &str = "test-key";

pub fn config(dir: &TempDir) -> ServeConfig {
    ServeConfig {
        data_dir: dir.path().to_path_buf(),
        datastore: None,
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        http_tls: None,
        grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        grpc_tls: None,
        clock: None,
        preshared_key: Some(KEY.to_string()),
        limits: Limits::default(),
        engine: EngineConfig::default(),
        snapshot_window: 1024,
        history_retention: Duration::from_secs(3600),
        watch_checkpoint: Duration::from_millis(200),
        expiry_sweep: Duration::from_secs(60),
        facade: None,
    }
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    pub fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&dir);
        adjust(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime
                .block_on(server::serve(
                    config,
                    |started| started_tx.send(started.clone()).unwrap(),
                    async move {
                        let _ = stopped.await;
                    },
                ))
                .unwrap();
        });
        let started = started_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        Self {
            addr: started.http_addr,
            grpc_addr: started.grpc_addr.unwrap(),
            key: started.key,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` with the key; returns the status and the parsed JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post_raw(path, &body.to_string(), Some(&self.key));
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: answer is not JSON ({e}): {text}"));
        (status, value)
    }

    /// POSTs `body`, expecting success; returns the answer.
    pub fn ok(&self, path: &str, body: &Value) -> Value {
        let (status, value) = self.post(path, body);
        assert_eq!(status, 200, "{path} failed: {value}");
        value
    }

    /// POSTs raw text with an optional key.
    pub fn post_raw(&self, path: &str, body: &str, key: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent
            .post(&self.url(path))
            .header("Content-Type", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send(body).unwrap();
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .unwrap();
        (status, text)
    }

    /// A streaming endpoint's result objects.
    pub fn stream(&self, path: &str, body: &Value) -> Vec<Value> {
        let (status, text) = self.post_raw(path, &body.to_string(), Some(&self.key));
        assert_eq!(status, 200, "{path} failed: {text}");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                assert!(v.get("error").is_none(), "{path} stream error: {v}");
                v["result"].take()
            })
            .collect()
    }

    /// Opens a streaming request and returns its result objects as they arrive (ending when
    /// the server ends the stream).
    pub fn open_stream(&self, path: &str, body: &Value) -> impl Iterator<Item = Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .post(&self.url(path))
            .header("Authorization", &format!("Bearer {}", self.key))
            .send(body.to_string())
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        BufReader::new(response.into_body().into_reader())
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str::<Value>(&l).unwrap()["result"].clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `{"objectType": t, "objectId": id}`.
pub fn object(text: &str) -> Value {
    let (t, id) = text.split_once(':').unwrap();
    serde_json::json!({"objectType": t, "objectId": id})
}

/// A subject reference from `type:id` or `type:id#rel`.
pub fn subject(text: &str) -> Value {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    serde_json::json!({"object": object(object_text), "optionalRelation": relation})
}

/// A relationship on the wire from `type:id#rel@type:id[#rel]`.
pub fn relationship(text: &str) -> Value {
    let (resource, rest) = text.split_once('#').unwrap();
    let (relation, subject_text) = rest.split_once('@').unwrap();
    serde_json::json!({"resource": object(resource), "relation": relation, "subject": subject(subject_text)})
}

/// A write request body touching every relationship.
pub fn touch(relationships: &[&str]) -> Value {
    let updates: Vec<Value> = relationships
        .iter()
        .map(|r| serde_json::json!({"operation": "OPERATION_TOUCH", "relationship": relationship(r)}))
        .collect();
    serde_json::json!({ "updates": updates })
}

/// A check request body.
pub fn check_body(resource: &str, permission: &str, who: &str, consistency: Value) -> Value {
    serde_json::json!({
        "consistency": consistency,
        "resource": object(resource),
        "permission": permission,
        "subject": subject(who),
    })
}
