//! The server under abuse, as users run it (`zanzi serve` processes, and the in-process
//! server for gRPC): a flood of requests with junk keys does not stop authenticated writes;
//! past `--max-concurrent-requests` checks are refused at once with 429; a walk that would run
//! for minutes ends at `--request-timeout` (HTTP 504) or at a gRPC client's deadline
//! (DEADLINE_EXCEEDED); a client that disconnects stops its walk.
//!
//! Latencies and memory are printed (run with `--nocapture`), never asserted.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tonic::Code;
use zanzi::proto::v1;

use crate::grpc::{object, subject, Clients};
use crate::process::{serve_with, KEY};
use crate::server_support::TestServer;

/// A layered graph: `node:L_a` and `node:L_b` each point (`next`) at both nodes of layer
/// L+1, so `reach` from `node:0_a` has 2^layers paths; walks are not memoised for `reach`
/// (it reaches itself) and no user is a member anywhere, so a check of it walks every path.
/// `view = gate & reach` makes a lookup of `view` confirm its one candidate (`node:0_a`,
/// gated for `user:tom`) with that walk.
const DAG_SCHEMA: &str = "definition user {}
definition node {
    relation next: node
    relation member: user
    relation gate: user
    permission reach = member + next->reach
    permission view = gate & reach
}";

/// The layered graph's write body.
fn dag_write(layers: usize) -> Value {
    let mut updates = vec![touch("node:0_a#gate@user:tom")];
    for layer in 0..layers {
        for from in ["a", "b"] {
            for to in ["a", "b"] {
                updates.push(touch(&format!(
                    "node:{layer}_{from}#next@node:{}_{to}",
                    layer + 1
                )));
            }
        }
    }
    json!({ "updates": updates })
}

fn touch(text: &str) -> Value {
    json!({"operation": "OPERATION_TOUCH", "relationship": crate::server_support::relationship(text)})
}

/// POSTs `body` to `url` with the key; the status and the JSON answer (the first line of a
/// stream).
fn call(url: &str, path: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut response = agent
        .post(&format!("{url}{path}"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .send_json(body)
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let first = text.lines().next().unwrap_or("null");
    let value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("{path}: {status} answer is not JSON ({e}): {text}"));
    (status, value)
}

fn ok(url: &str, path: &str, body: &Value) -> Value {
    let (status, value) = call(url, path, body);
    assert_eq!(status, 200, "{path}: {value}");
    value
}

fn reach_check() -> Value {
    reach_check_as("nobody")
}

/// [`reach_check`] for another user: a check the server has not answered before (so not
/// answered from its cache).
fn reach_check_as(user: &str) -> Value {
    json!({
        "consistency": {"fullyConsistent": true},
        "resource": {"objectType": "node", "objectId": "0_a"},
        "permission": "reach",
        "subject": {"object": {"objectType": "user", "objectId": user}},
    })
}

fn view_lookup() -> Value {
    json!({
        "consistency": {"fullyConsistent": true},
        "resourceObjectType": "node",
        "permission": "view",
        "subject": {"object": {"objectType": "user", "objectId": "tom"}},
    })
}

/// The resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `zanzi_engine_calls_running` from `/metrics`.
fn engine_calls_running(url: &str) -> u64 {
    let text = ureq::get(&format!("{url}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("zanzi_engine_calls_running "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Waits (up to `within`) until `done` holds; whether it did.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn a_lookup_that_would_run_for_minutes_ends_at_the_request_timeout_with_504() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--request-timeout",
        "500ms",
    ]);
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({"schema": DAG_SCHEMA}),
    );
    ok(&served.url, "/v1/relationships/write", &dag_write(40));
    let started = Instant::now();
    let (status, body) = call(&served.url, "/v1/permissions/resources", &view_lookup());
    println!("lookup stopped after {:?}", started.elapsed());
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], 4, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("deadline"), "{message}");
    // The check and expand walks stop the same way; the server still answers.
    let (status, body) = call(&served.url, "/v1/permissions/check", &reach_check());
    assert_eq!((status, body["code"].as_u64()), (504, Some(4)), "{body}");
    // The walks stop (at their next step) and give their slots back.
    assert!(eventually(
        Duration::from_secs(30),
        || engine_calls_running(&served.url) == 0
    ));
    ok(&served.url, "/v1/schema/read", &json!({}));
}

#[test]
fn request_timeout_flag_refuses_what_is_not_a_duration() {
    let (code, output) = crate::process::zanzi(&["serve", "--request-timeout", "soon"]);
    assert_ne!(code, 0);
    assert!(output.contains("not a duration"), "{output}");
}

#[test]
fn a_grpc_client_deadline_ends_the_walk_with_deadline_exceeded() {
    let server = TestServer::start();
    server.ok("/v1/schema/write", &json!({"schema": DAG_SCHEMA}));
    server.ok("/v1/relationships/write", &dag_write(40));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = Clients::connect(&server, &server.key).await;
        let mut request = tonic::Request::new(v1::CheckPermissionRequest {
            resource: object("node:0_a"),
            permission: "reach".into(),
            subject: subject("user:nobody"),
            ..Default::default()
        });
        request.set_timeout(Duration::from_millis(400));
        let status = clients
            .permissions
            .check_permission(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("deadline"), "{status:?}");

        let mut request = tonic::Request::new(v1::LookupResourcesRequest {
            resource_object_type: "node".into(),
            permission: "view".into(),
            subject: subject("user:tom"),
            ..Default::default()
        });
        request.set_timeout(Duration::from_millis(400));
        let status = match clients.permissions.lookup_resources(request).await {
            Err(status) => status,
            Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    });
    assert!(eventually(Duration::from_secs(10), || server
        .ok("/v1/schema/read", &json!({}))
        .is_object()));
}

#[test]
fn a_client_that_disconnects_stops_its_walk() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--request-timeout",
        "10m",
    ]);
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({"schema": DAG_SCHEMA}),
    );
    ok(&served.url, "/v1/relationships/write", &dag_write(40));
    let body = reach_check().to_string();
    let addr = served.url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "POST /v1/permissions/check HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || engine_calls_running(
            &served.url
        ) == 1),
        "the walk never started"
    );
    drop(socket);
    // Without cancellation the walk would hold its slot for 10 minutes.
    assert!(
        eventually(Duration::from_secs(30), || engine_calls_running(
            &served.url
        ) == 0),
        "the walk went on after its client left"
    );
}

#[test]
fn past_max_concurrent_requests_checks_get_429_at_once_and_nothing_else_fails() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--max-concurrent-requests",
        "2",
    ]);
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({"schema": DAG_SCHEMA}),
    );
    // 2^14 paths: a check that takes a noticeable while but ends.
    ok(&served.url, "/v1/relationships/write", &dag_write(14));
    let started = Instant::now();
    let (status, body) = call(&served.url, "/v1/permissions/check", &reach_check());
    println!("one slow check alone: {:?}", started.elapsed());
    assert_eq!(status, 200, "{body}");

    let threads = 16;
    let rounds = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let peak_rss = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = served.child.id();
    let sampler = {
        let (peak_rss, stop) = (Arc::clone(&peak_rss), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak_rss.fetch_max(rss_kib(pid) as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (barrier, answers, url) = (
                Arc::clone(&barrier),
                Arc::clone(&answers),
                served.url.clone(),
            );
            std::thread::spawn(move || {
                for round in 0..rounds {
                    barrier.wait();
                    // A check nobody asked before: a cached answer is given on the async
                    // thread in microseconds and would rarely meet another one.
                    let check = reach_check_as(&format!("nobody{thread}_{round}"));
                    let answer = call(&url, "/v1/permissions/check", &check);
                    answers.lock().unwrap().push(answer);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let answers = answers.lock().unwrap();
    let refused = answers.iter().filter(|(status, _)| *status == 429).count();
    let answered = answers.iter().filter(|(status, _)| *status == 200).count();
    println!(
        "{} checks at once, {rounds} rounds, --max-concurrent-requests 2: {answered} answered, {refused} refused (429); server RSS peak {} KiB, after {} KiB",
        threads,
        peak_rss.load(Ordering::Relaxed),
        rss_kib(pid)
    );
    for (status, body) in answers.iter() {
        match status {
            200 => assert_eq!(body["permissionship"], "PERMISSIONSHIP_NO_PERMISSION"),
            429 => {
                assert_eq!(body["code"], 8, "{body}");
                assert!(body["message"].as_str().unwrap().contains("busy"), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "no check was refused");
    assert!(
        answered >= rounds,
        "fewer than one check per round answered"
    );
    // Health and readiness are never limited, and the slots come back.
    assert!(eventually(
        Duration::from_secs(30),
        || engine_calls_running(&served.url) == 0
    ));
    ok(&served.url, "/v1/permissions/check", &reach_check());
}

#[test]
fn an_import_over_the_relationship_limit_is_refused_as_it_is_read_and_nothing_is_written() {
    let server = TestServer::start_with(|config| config.limits.max_import_relationships = 5);
    server.ok("/v1/schema/write", &json!({"schema": DAG_SCHEMA}));
    let rels = |range: std::ops::Range<usize>| -> Vec<Value> {
        range
            .map(|n| crate::server_support::relationship(&format!("node:{n}#gate@user:tom")))
            .collect()
    };
    // Over HTTP: two messages of 3; the sixth relationship is one too many.
    let body = format!(
        "{}\n{}",
        json!({"relationships": rels(0..3)}),
        json!({"relationships": rels(3..6)})
    );
    let (status, text) = server.post_raw("/v1/relationships/importbulk", &body, Some(&server.key));
    assert_eq!(status, 400, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["code"], 3);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("more than 5 relationships"),
        "{answer}"
    );
    // Exactly the limit is fine.
    let body = json!({"relationships": rels(0..5)}).to_string();
    let (status, text) = server.post_raw("/v1/relationships/importbulk", &body, Some(&server.key));
    assert_eq!(status, 200, "{text}");

    // Over gRPC, refused as the stream is read.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = Clients::connect(&server, &server.key).await;
        let messages: Vec<v1::ImportBulkRelationshipsRequest> = (0..3)
            .map(|m| v1::ImportBulkRelationshipsRequest {
                relationships: (0..3)
                    .map(|i| crate::grpc::relationship(&format!("node:g{m}_{i}#gate@user:tom")))
                    .collect(),
            })
            .collect();
        let status = clients
            .permissions
            .import_bulk_relationships(futures_util::stream::iter(messages))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("more than 5"), "{status:?}");
    });
    let read = server.stream(
        "/v1/relationships/read",
        &json!({"relationshipFilter": {"resourceType": "node"}}),
    );
    assert_eq!(read.len(), 5, "only the import within the limit was stored");
}

/// One junk request on its own connection: sent, then read to the end. Its status, or
/// `None` when the connection failed.
fn junk_request(addr: &str, request: &str) -> Option<TcpStream> {
    let mut socket = TcpStream::connect(addr).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    socket.write_all(request.as_bytes()).ok()?;
    Some(socket)
}

fn status_of(mut socket: TcpStream) -> Option<u16> {
    use std::io::Read as _;
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Asserts that `socket`, whose request was sent, gets no byte of an answer in half a second:
/// the server has not accepted its connection (it waits past `budget`).
fn assert_not_answered_within_half_a_second(socket: &mut TcpStream, budget: &str) {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(socket, &mut byte);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a connection past {budget} was served: {early:?}"
    );
}

/// The kernel's count of connections that found a listen queue full (`ListenOverflows` of
/// `/proc/net/netstat`; machine-wide).
fn listen_overflows() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (tcp_ext.next(), tcp_ext.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// The `q` quantile of `samples` (sorted here).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[index]
}

#[test]
fn a_flood_of_junk_keys_does_not_stop_authenticated_writes() {
    const FLOOD_THREADS: usize = 50;
    const SOCKETS_PER_THREAD: usize = 20; // 1,000 requests in flight at once
    const WRITES: usize = 200;
    // `ZANZI_TEST_SERVER_CPUS=0 ZANZI_TEST_CLIENT_CPUS=1` keeps the server and the flood on
    // different cores, so the figures measure the server rather than CPU contention; the
    // writer (this thread) runs beside the server, not among the flood's 50 threads.
    let server_cpus = crate::process::pin_this_thread(crate::process::SERVER_CPUS);
    let client_cpus = std::env::var(crate::process::CLIENT_CPUS).ok();
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--jwt-secret",
        "an-abuse-test-secret-of-at-least-32-bytes",
    ]);
    // The facades' built-in schema, and ours beside it.
    let builtin = ok(&served.url, "/v1/schema/read", &json!({}));
    let schema = format!("{}\n{DAG_SCHEMA}", builtin["schemaText"].as_str().unwrap());
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({ "schema": schema }),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let write = |n: usize| -> (u16, Duration) {
        let body = json!({"updates": [touch(&format!("node:w{n}#gate@user:tom"))]});
        let started = Instant::now();
        let mut response = agent
            .post(&format!("{}/v1/relationships/write", served.url))
            .header("Authorization", &format!("Bearer {KEY}"))
            .send_json(&body)
            .unwrap();
        // Read to the end, so the agent keeps its connection for the next write (as SDK
        // clients do); a new connection per write would wait behind the flood's connections
        // in the kernel's accept queue (a full queue drops a SYN, retried after a second).
        response.body_mut().read_to_string().unwrap();
        (response.status().as_u16(), started.elapsed())
    };
    let mut quiet: Vec<Duration> = (0..WRITES)
        .map(|n| {
            let (status, took) = write(n);
            assert_eq!(status, 200);
            took
        })
        .collect();

    let addr = served.url.trim_start_matches("http://").to_string();
    let requests = [
        format!("PUT /public/groups/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer junk-org-key\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{{\"name\":\"x\"}}"),
        format!("POST /v1/relationships/write HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer junk-key\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        format!("GET /scim/v2/00000000-0000-0000-0000-000000000000/Groups HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer junk-scim-key\r\nConnection: close\r\n\r\n"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(
        std::collections::BTreeMap::<Option<u16>, usize>::new(),
    ));
    let flood: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            let (stop, answered, statuses, addr, requests) = (
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&statuses),
                addr.clone(),
                requests.clone(),
            );
            std::thread::spawn(move || {
                crate::process::pin_this_thread(crate::process::CLIENT_CPUS);
                while !stop.load(Ordering::Relaxed) {
                    let sockets: Vec<_> = (0..SOCKETS_PER_THREAD)
                        .map(|s| junk_request(&addr, &requests[(t + s) % requests.len()]))
                        .collect();
                    for socket in sockets {
                        let status = socket.and_then(status_of);
                        answered.fetch_add(1, Ordering::Relaxed);
                        *statuses.lock().unwrap().entry(status).or_default() += 1;
                    }
                }
            })
        })
        .collect();
    // Writes start once the flood is in full swing.
    assert!(eventually(Duration::from_secs(60), || answered
        .load(Ordering::Relaxed)
        >= 1_000));
    let before = answered.load(Ordering::Relaxed);
    let overflows_before = listen_overflows();
    let mut flooded: Vec<Duration> = (0..WRITES)
        .map(|n| {
            let (status, took) = write(WRITES + n);
            assert_eq!(status, 200, "an authenticated write failed under the flood");
            took
        })
        .collect();
    let during = answered.load(Ordering::Relaxed) - before;
    let overflows = listen_overflows() - overflows_before;
    stop.store(true, Ordering::Relaxed);
    for thread in flood {
        thread.join().unwrap();
    }
    let statuses = statuses.lock().unwrap();
    println!("server and writer on CPUs {server_cpus:?}, flood on CPUs {client_cpus:?}; {overflows} connections found the accept queue full (machine-wide) during the writes");
    println!(
        "authenticated writes: quiet p50 {:?} p99 {:?}; under a flood of {} concurrent junk-key requests ({during} answered during the writes, statuses {statuses:?}) p50 {:?} p99 {:?}",
        quantile(&mut quiet, 0.5),
        quantile(&mut quiet, 0.99),
        FLOOD_THREADS * SOCKETS_PER_THREAD,
        quantile(&mut flooded, 0.5),
        quantile(&mut flooded, 0.99),
    );
    assert!(during > 0, "the flood stopped before the writes ran");
    for (status, count) in statuses.iter() {
        assert_eq!(*status, Some(401), "{count} junk requests got {status:?}");
    }
    // The last write is there.
    let (status, body) = call(
        &served.url,
        "/v1/permissions/check",
        &json!({
            "consistency": {"fullyConsistent": true},
            "resource": {"objectType": "node", "objectId": format!("w{}", 2 * WRITES - 1)},
            "permission": "gate",
            "subject": {"object": {"objectType": "user", "objectId": "tom"}},
        }),
    );
    assert_eq!(
        (status, &body["permissionship"]),
        (200, &json!("PERMISSIONSHIP_HAS_PERMISSION"))
    );
}

#[test]
fn the_facades_share_the_bound_and_answer_429_in_their_own_shapes() {
    const SECRET: &str = "abuse-test-secret-of-at-least-32-bytes";
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--max-concurrent-requests",
        "1",
        "--request-timeout",
        "10s",
        "--jwt-secret",
        SECRET,
    ]);
    // The facade's built-in schema with the layered graph beside it (a superset it keeps).
    let builtin = ok(&served.url, "/v1/schema/read", &json!({}));
    let schema = format!("{}\n{DAG_SCHEMA}", builtin["schemaText"].as_str().unwrap());
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({ "schema": schema }),
    );
    ok(&served.url, "/v1/relationships/write", &dag_write(40));
    let token = zanzi::facade::auth::issue_token(
        &zanzi::facade::auth::SigningKey::Secret(SECRET.to_string()),
        "alice",
        Duration::from_secs(600),
        None,
        None,
    )
    .unwrap();
    let bearer = format!("Bearer {token}");
    let user_call =
        |path: &str| crate::process::call(&served.url, "GET", path, &bearer, None).unwrap();
    assert_eq!(user_call("/v1beta1/users/self").0, 200);

    // A walk that holds the one permit until its deadline.
    let walker = {
        let url = served.url.clone();
        std::thread::spawn(move || call(&url, "/v1/permissions/resources", &view_lookup()))
    };
    assert!(eventually(Duration::from_secs(5), || {
        engine_calls_running(&served.url) == 1
    }));
    let (status, body) = user_call("/v1beta1/users/self");
    assert_eq!(status, 429, "{body}");
    assert!(body["message"].as_str().unwrap().contains("busy"), "{body}");
    let (status, body) = user_call("/api/organizations/o1/groups");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["object"], "error", "Bitwarden's error shape: {body}");

    let (status, body) = walker.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(eventually(Duration::from_secs(30), || {
        engine_calls_running(&served.url) == 0
    }));
    assert_eq!(user_call("/v1beta1/users/self").0, 200);
}

/// Stores `count` relationships `node:N#gate@user:tom` over gRPC, 1,000 per message.
async fn import_gates(clients: &mut Clients, count: usize) {
    let messages: Vec<v1::ImportBulkRelationshipsRequest> = (0..count.div_ceil(1_000))
        .map(|m| v1::ImportBulkRelationshipsRequest {
            relationships: (m * 1_000..count.min((m + 1) * 1_000))
                .map(|n| crate::grpc::relationship(&format!("node:{n}#gate@user:tom")))
                .collect(),
        })
        .collect();
    clients
        .permissions
        .import_bulk_relationships(futures_util::stream::iter(messages))
        .await
        .unwrap();
}

#[test]
fn relationship_reads_and_exports_stop_at_the_request_timeout() {
    const STORED: usize = 60_000;
    let server = TestServer::start_with(|config| {
        config.limits.request_timeout = Duration::from_millis(300);
    });
    server.ok("/v1/schema/write", &json!({"schema": DAG_SCHEMA}));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut clients = Clients::connect(&server, &server.key).await;
        import_gates(&mut clients, STORED).await;
    });

    // HTTP: a client that reads the first line, then waits past the deadline. The read goes
    // on from what the buffers hold and ends with DEADLINE_EXCEEDED as its last item.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for (path, body) in [
        (
            "/v1/relationships/read",
            json!({"relationshipFilter": {"resourceType": "node"}}),
        ),
        ("/v1/relationships/exportbulk", json!({})),
    ] {
        let response = agent
            .post(&server.url(path))
            .header("Authorization", &format!("Bearer {}", server.key))
            .send(body.to_string())
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(response.into_body().into_reader()));
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert!(first.get("result").is_some(), "{path}: {first}");
        std::thread::sleep(Duration::from_millis(1_500));
        let rest: Vec<Value> = lines
            .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
            .collect();
        let (last, results) = rest.split_last().unwrap();
        assert_eq!(last["error"]["code"], 4, "{path}: {last}");
        let message = last["error"]["message"].as_str().unwrap();
        assert!(message.contains("deadline"), "{path}: {message}");
        let read: usize = std::iter::once(&first)
            .chain(results)
            .map(|line| {
                line["result"]["relationships"]
                    .as_array()
                    .map_or(1, Vec::len)
            })
            .sum();
        println!("{path}: {read} of {STORED} relationships before the deadline");
        assert!(read < STORED, "{path}: the whole store was read");
    }

    // zanzi's own client resumes an export the deadline stopped, from its last page: a
    // consumer that dawdles over the first page still gets every relationship once.
    let client = zanzi::client::Client::new(&server.url(""), &server.key);
    let mut exported = std::collections::BTreeSet::new();
    let mut pages = 0;
    client
        .export(|page| {
            if pages == 0 {
                std::thread::sleep(Duration::from_millis(1_500));
            }
            pages += 1;
            for rel in page {
                assert!(exported.insert(rel.to_string()), "{rel} exported twice");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(exported.len(), STORED);

    // gRPC: ReadRelationships and ExportBulkRelationships end with DEADLINE_EXCEEDED.
    runtime.block_on(async {
        let mut clients = Clients::connect(&server, &server.key).await;
        let read = clients
            .permissions
            .read_relationships(v1::ReadRelationshipsRequest {
                relationship_filter: Some(v1::RelationshipFilter {
                    resource_type: "node".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let export = clients
            .permissions
            .export_bulk_relationships(v1::ExportBulkRelationshipsRequest::default())
            .await
            .unwrap()
            .into_inner();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut read = read;
        let mut items = 0;
        let status = loop {
            match read.message().await {
                Ok(Some(_)) => items += 1,
                Ok(None) => panic!("the read ended without an error after {items} items"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(items < STORED);
        let mut export = export;
        let status = loop {
            match export.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the export ended without an error"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    });
    // The reads gave their permits back.
    assert!(eventually(Duration::from_secs(10), || {
        engine_calls_running(server.url("").trim_end_matches('/')) == 0
    }));
}

#[test]
fn past_max_http_connections_new_connections_wait_while_kept_ones_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--max-http-connections",
        "2",
    ]);
    let addr = served.url.trim_start_matches("http://").to_string();
    // One client keeps its connection (the agent reuses it once a body is read to the end).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let schema = |agent: &ureq::Agent| -> u16 {
        let mut response = agent
            .post(&format!("{}/v1/schema/write", served.url))
            .header("Authorization", &format!("Bearer {KEY}"))
            .send_json(json!({"schema": DAG_SCHEMA}))
            .unwrap();
        response.body_mut().read_to_string().unwrap();
        response.status().as_u16()
    };
    assert_eq!(schema(&agent), 200);
    // An idle connection takes the second place.
    let idle = TcpStream::connect(&addr).unwrap();
    // A third connection is not served while both are open...
    let mut waiting = junk_request(
        &addr,
        &format!("POST /v1/relationships/write HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer junk-key\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
    )
    .unwrap();
    assert_not_answered_within_half_a_second(&mut waiting, "the budget");
    // ...while the kept connection is.
    assert_eq!(schema(&agent), 200);
    // Once the idle one closes, the waiting one gets its answer.
    drop(idle);
    waiting
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(status_of(waiting), Some(401));
}

#[test]
fn a_check_over_one_huge_flat_relation_stops_at_the_deadline() {
    // 200,000 direct viewers of one document, and a check for a subject set among them: the
    // walk scans every row of `viewer` in one step (none of them leads anywhere).
    const VIEWERS: usize = 200_000;
    // Without the cache, so the second check walks again.
    let (engine, _dir) = crate::support::engine_with_config(
        "definition user {}
        definition group { relation member: user }
        definition doc {
            relation viewer: user | group#member
            permission view = viewer
        }",
        &[],
        zanzi::engine::EngineConfig::plain(),
    );
    engine
        .import(
            (0..VIEWERS).map(|n| {
                Ok(zanzi::tuple::Relationship::parse(&format!("doc:1#viewer@user:u{n}")).unwrap())
            }),
            zanzi::transaction::ImportMode::Touch,
        )
        .unwrap();
    let doc = zanzi::tuple::ObjectRef::parse("doc:1").unwrap();
    let members = zanzi::tuple::SubjectRef::parse("group:g#member").unwrap();
    let context = zanzi::engine::Context::new();
    let consistency = zanzi::revision::Consistency::FullyConsistent;
    let started = Instant::now();
    let answer = engine
        .at(consistency)
        .unwrap()
        .check(&doc, "view", &members, &context)
        .unwrap();
    let scan = started.elapsed();
    assert_eq!(
        answer.permissionship,
        zanzi::engine::Permissionship::No,
        "{answer:?}"
    );
    // A quarter of the scan's own time: the walk starts well within it and must stop in the
    // middle of the scan, not after it.
    let timeout = scan / 4;
    let started = Instant::now();
    let stopped = engine
        .at(consistency)
        .unwrap()
        .interrupted_by(zanzi::engine::Interrupt::after(timeout))
        .check(&doc, "view", &members, &context);
    println!(
        "scan of {VIEWERS} rows: {scan:?}; with a deadline of {timeout:?} it stopped after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            stopped,
            Err(zanzi::engine::EngineError::DeadlineExceeded(_))
        ),
        "{stopped:?}"
    );
}

/// Sends one keep-alive HTTP/1.1 request on `socket` and reads its answer (headers and a
/// `Content-Length` body); the status.
fn keep_alive_request(socket: &mut TcpStream, request: &str) -> std::io::Result<u16> {
    use std::io::Read as _;
    socket.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        answer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body)?;
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::ErrorKind::InvalidData.into())
}

#[test]
fn unauthenticated_connections_have_a_budget_of_their_own_and_a_short_life() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_with(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--max-unauthenticated-connections",
        "2",
    ]);
    ok(
        &served.url,
        "/v1/schema/write",
        &json!({ "schema": DAG_SCHEMA }),
    );
    let addr = served.url.trim_start_matches("http://").to_string();
    let schema_read = format!(
        "POST /v1/schema/read HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    // A client that proved itself with its key keeps its connection.
    let mut proven = TcpStream::connect(&addr).unwrap();
    proven
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(keep_alive_request(&mut proven, &schema_read).unwrap(), 200);
    // Two connections that say nothing fill the unauthenticated budget...
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let socket = TcpStream::connect(&addr).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            socket
        })
        .collect();
    // ...so a new connection waits, even with a valid key (it cannot show it before it is
    // accepted)...
    let mut waiting = TcpStream::connect(&addr).unwrap();
    waiting.write_all(schema_read.as_bytes()).unwrap();
    assert_not_answered_within_half_a_second(&mut waiting, "the unauthenticated budget");
    // ...while the proven connection is served.
    assert_eq!(keep_alive_request(&mut proven, &schema_read).unwrap(), 200);
    // The idle ones are closed by the server once their time without a credential is over.
    for mut socket in idle {
        let mut rest = Vec::new();
        let read = std::io::Read::read_to_end(&mut socket, &mut rest);
        assert!(
            matches!(read, Ok(0)),
            "an idle unauthenticated connection was not closed: {read:?} {rest:?}"
        );
    }
    // Then the waiting connection is accepted and answered.
    waiting
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = vec![0u8; 12];
    std::io::Read::read_exact(&mut waiting, &mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The proven connection outlived the unauthenticated ones and still serves.
    assert_eq!(keep_alive_request(&mut proven, &schema_read).unwrap(), 200);
}
