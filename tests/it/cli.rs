//! The `zanzi` command line as a user runs it (the built binary, against a live server or a
//! data folder): endpoints without a scheme, errors said once, schema errors with a caret,
//! `expand`, `watch --since`, `--context`, imports that name the line and store all or
//! nothing, a closed pipe, plain logs off a terminal.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::server_support::TestServer;

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
caveat weekday(day string) { day != \"sunday\" }
definition doc {
    relation viewer: user | group#member | user with weekday
    relation owner: user
    permission view = viewer + owner
}
";

fn zanzi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zanzi"));
    command
        .env_remove("ZANZI_DATA_DIR")
        .env_remove("ZANZI_ENDPOINT")
        .env_remove("ZANZI_KEY")
        .env("RUST_LOG", "warn");
    command
}

/// Runs the binary; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let output = zanzi().args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

struct Remote {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Remote {
    fn start() -> Self {
        let remote = Self {
            server: TestServer::start(),
            dir: tempfile::tempdir().unwrap(),
        };
        let schema = remote.file("schema.zed", SCHEMA);
        let (code, out, err) = remote.run(&["schema", "write", &schema]);
        assert_eq!(code, 0, "{out}{err}");
        remote
    }

    /// `host:port`, no scheme.
    fn endpoint(&self) -> String {
        self.server.addr.to_string()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let endpoint = self.endpoint();
        let mut all = args.to_vec();
        all.extend([
            "--endpoint",
            endpoint.as_str(),
            "--key",
            self.server.key.as_str(),
        ]);
        run(&all)
    }
}

#[test]
fn endpoints_without_a_scheme_work_and_unreachable_ones_say_so_once() {
    let remote = Remote::start();
    let (code, out, err) = remote.run(&["schema", "read"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("definition doc"), "{out}");

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(&[
        "schema",
        "read",
        "--endpoint",
        &closed.to_string(),
        "--key",
        "k",
    ]);
    assert_eq!(code, 1);
    assert_eq!(err.matches("cannot reach").count(), 1, "{err}");
    assert!(err.contains(&format!("http://{closed}")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (code, _, err) = run(&[
        "schema",
        "read",
        "--endpoint",
        "https://example:443",
        "--key",
        "k",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid endpoint `https://example:443`"),
        "{err}"
    );
    let (_, _, err) = run(&[
        "schema",
        "read",
        "--endpoint",
        "host:notaport",
        "--key",
        "k",
    ]);
    assert!(err.contains("port"), "{err}");
}

#[test]
fn errors_are_said_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        &addr,
        "--grpc-addr",
        "127.0.0.1:0",
        "--preshared-key",
        "k",
    ]);
    assert_eq!(code, 1);
    let said = err.to_lowercase().matches("in use").count();
    assert_eq!(said, 1, "{err}");
}

#[test]
fn schema_errors_show_the_line_and_a_caret() {
    let remote = Remote::start();
    let bad = remote.file(
        "bad.zed",
        "definition user {}\ndefinition doc {\n    relation viewer: usr\n}\n",
    );
    for (code, _, err) in [
        remote.run(&["schema", "write", &bad]),
        run(&[
            "schema",
            "write",
            &bad,
            "--data-dir",
            remote.dir.path().join("local").to_str().unwrap(),
        ]),
    ] {
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("bad.zed:3:22"), "{err}");
        assert!(err.contains("3 |     relation viewer: usr"), "{err}");
        let caret = err.lines().find(|l| l.contains('^')).unwrap_or_default();
        assert_eq!(
            caret.find('^'),
            err.lines()
                .find(|l| l.contains("relation viewer: usr"))
                .and_then(|l| l.find("usr")),
            "{err}"
        );
        assert_eq!(err.matches("usr` not found").count(), 1, "{err}");
    }
}

#[test]
fn expand_context_and_watch() {
    let remote = Remote::start();
    let (code, _, err) = remote.run(&[
        "relationship",
        "write",
        "doc:readme#viewer@group:eng#member",
        "group:eng#member@user:ann",
        r#"doc:readme#viewer@user:tom[weekday]"#,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = remote.run(&["expand", "doc:readme#view"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some("doc:readme#view (union)"), "{out}");
    assert!(out.contains("group:eng#member"), "{out}");
    assert!(out.contains("└── doc:readme#owner (no subjects)"), "{out}");

    let (_, out, _) = remote.run(&["lookup-resources", "doc", "view", "user:tom"]);
    assert_eq!(out.trim(), "readme (conditional)");
    let (code, out, err) = remote.run(&[
        "lookup-resources",
        "doc",
        "view",
        "user:tom",
        "--context",
        r#"{"day": "monday"}"#,
    ]);
    assert_eq!((code, out.trim()), (0, "readme"), "{err}");
    let (_, out, _) = remote.run(&[
        "lookup-subjects",
        "doc:readme",
        "view",
        "user",
        "--context",
        r#"{"day": "sunday"}"#,
    ]);
    assert_eq!(out.trim(), "ann");

    // watch --since the write's token streams the next write.
    let token = remote.server.ok("/v1/schema/read", &serde_json::json!({}))["readAt"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let endpoint = remote.endpoint();
    let mut watcher = zanzi()
        .args([
            "watch",
            "--since",
            &token,
            "--type",
            "doc",
            "--endpoint",
            &endpoint,
            "--key",
            &remote.server.key,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, _, err) = remote.run(&[
        "relationship",
        "write",
        "doc:later#owner@user:ann",
        "group:x#member@user:z",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    watcher.kill().unwrap();
    let _ = watcher.wait();
    assert_eq!(first, "TOUCH doc:later#owner@user:ann");
    assert!(second.starts_with("# changes through "), "{second}");
}

#[test]
fn imports_name_the_line_and_store_all_or_nothing() {
    let remote = Remote::start();
    let local_dir = remote.dir.path().join("local");
    let local = local_dir.to_str().unwrap();
    let schema = remote.file("schema2.zed", SCHEMA);
    assert_eq!(run(&["schema", "write", &schema, "--data-dir", local]).0, 0);
    let lines: Vec<String> = (0..6)
        .map(|i| format!("doc:d{i}#viewer@user:u{i}"))
        .collect();
    let file = remote.file(
        "rels.txt",
        &format!("// a comment\n\n{}\n", lines.join("\n")),
    );
    let existing = "doc:d4#viewer@user:u4";

    for target in [vec!["--data-dir", local], vec![]] {
        let go = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(target.iter().copied());
            if target.is_empty() {
                remote.run(&all)
            } else {
                run(&all)
            }
        };
        assert_eq!(go(&["relationship", "write", existing]).0, 0);
        // All or nothing: line 7 (the fifth relationship) exists.
        let (code, _, err) = go(&["import", &file]);
        assert_eq!(code, 1);
        assert_eq!(
            err.trim(),
            format!(
                "error: line 7: relationship `{existing}` already exists; nothing was imported"
            ),
        );
        let (_, out, _) = go(&["export"]);
        assert_eq!(out.trim(), existing, "the failed import stored something");
        // In batches of two: two batches are stored.
        let (code, _, err) = go(&["import", &file, "--batch", "2"]);
        assert_eq!(code, 1);
        assert!(
            err.contains("line 7: relationship")
                && err.contains("4 relationships were stored by earlier batches, through line 6"),
            "{err}"
        );
        let (_, out, _) = go(&["export"]);
        assert_eq!(out.lines().count(), 5, "{out}");
        // TOUCH puts the export back over itself.
        let (code, _, err) = go(&["import", &file, "--touch"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("imported 6 relationships as one revision"),
            "{err}"
        );
        let (_, out, _) = go(&["export"]);
        assert_eq!(out.lines().count(), 6, "{out}");
        go(&["relationship", "delete"]
            .into_iter()
            .chain(lines.iter().map(String::as_str))
            .collect::<Vec<_>>());
        assert!(go(&["export"]).1.trim().is_empty());
    }

    // A malformed line and a relation the schema lacks are named too.
    let bad = remote.file("bad.txt", "doc:a#viewer@user:x\ndoc:b#viewer\n");
    let (_, _, err) = remote.run(&["import", &bad]);
    assert!(err.starts_with("error: line 2: "), "{err}");
    let bad = remote.file("bad2.txt", "doc:a#viewer@user:x\ndoc:b#editor@user:x\n");
    let (_, _, err) = run(&["import", &bad, "--data-dir", local]);
    assert!(
        err.starts_with("error: line 2: ") && err.contains("editor"),
        "{err}"
    );
}

#[test]
fn logs_off_a_terminal_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut served = zanzi()
        .args(["serve", "--data-dir", dir.path().to_str().unwrap()])
        .args([
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .args(["--preshared-key", "k"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(served.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("zanzi listening on") {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the server did not start"
        );
    }
    let (code, _, err) = run(&[
        "schema",
        "read",
        "--endpoint",
        &format!("127.0.0.1:{port}"),
        "--key",
        "k",
    ]);
    assert_eq!(code, 1, "{err}");
    served.kill().unwrap();
    let _ = served.wait();
    let mut log = String::new();
    served
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("DEBUG"), "no debug log was written: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal: {log:?}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let remote = Remote::start();
    let lines: Vec<String> = (0..20_000)
        .map(|i| format!("doc:d{i}#viewer@user:u{}", i % 10))
        .collect();
    let file = remote.file("many.txt", &lines.join("\n"));
    assert_eq!(remote.run(&["import", &file]).0, 0);
    let endpoint = remote.endpoint();
    let mut export = zanzi()
        .args([
            "export",
            "--endpoint",
            &endpoint,
            "--key",
            &remote.server.key,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(export.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the next writes fail with a broken pipe.
    let status = export.wait().unwrap();
    let mut err = String::new();
    export
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(first.starts_with("doc:d"), "{first}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}
