//! A real PostgreSQL server for the tests: a throw-away cluster (initdb, pg_ctl) in a temporary
//! folder, on a free loopback port, trusting local connections. One cluster serves the whole
//! test process ([`shared`]), each test gets its own database ([`Cluster::database`]); a test
//! that stops the server makes a private cluster ([`Cluster::start`]).
//!
//! PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user that
//! Debian's package creates. A watchdog process stops the cluster and removes its folder when
//! the test process exits, however it exits. When PostgreSQL cannot be started the test fails
//! with the reason (`scripts/setup` installs Debian's `postgresql` package).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_root: bool,
    /// Stop and remove it when dropped (private clusters; the shared one lives until exit).
    owned: bool,
}

/// A database of a cluster, created for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub url: String,
    /// The database's name.
    pub name: String,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The test process's cluster, started on first use; fails the test with the reason when
/// PostgreSQL cannot be started.
pub fn shared() -> &'static Cluster {
    match SHARED.get_or_init(|| Cluster::launch(false)) {
        Ok(cluster) => cluster,
        Err(reason) => panic!("PostgreSQL for the tests could not be started: {reason}"),
    }
}

/// A fresh database on the shared cluster.
pub fn database() -> TestDb {
    shared().database()
}

impl Cluster {
    /// A private cluster, stopped and removed when dropped.
    pub fn start() -> Self {
        Self::launch(true).unwrap_or_else(|reason| {
            panic!("PostgreSQL for the tests could not be started: {reason}")
        })
    }

    fn launch(owned: bool) -> Result<Self, String> {
        let bin = find_bin()?;
        let as_root = run(Command::new("id").arg("-u"))
            .map(|out| out.trim() == "0")
            .map_err(|e| format!("cannot tell who runs the tests: {e}"))?;
        if as_root && run(Command::new("id").arg("postgres")).is_err() {
            return Err("the tests run as root and there is no `postgres` user to own the cluster (PostgreSQL refuses root); install Debian's postgresql package".to_string());
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zanzi-pg-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = free_port()?;
        let cluster = Self {
            bin,
            dir,
            port,
            as_root,
            owned,
        };
        cluster.watch_parent()?;
        if as_root {
            run(Command::new("chown").arg("postgres:").arg(&cluster.dir))?;
        }
        cluster.initdb()?;
        cluster.start_server()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// A command running `tool` of PostgreSQL as the cluster's owner.
    fn tool(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut command = if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir("/");
        command
    }

    fn initdb(&self) -> Result<(), String> {
        run(self.tool("initdb").arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))
        .map_err(|e| format!("initdb failed: {e}"))?;
        // Loopback TCP only; durability off (the tests never crash the server itself, only
        // stop it cleanly), so a test database costs little.
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n\
             max_connections = 300\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\n",
            self.port
        );
        let conf = self.data().join("postgresql.conf");
        // Root may write the owner's file; its ownership and mode stay as they were.
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))
    }

    fn start_server(&self) -> Result<(), String> {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "60", "start"]))
        .map_err(|e| format!("pg_ctl start failed: {e}; log: {}", self.log_tail()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while run(self.tool("pg_isready").args([
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
        ]))
        .is_err()
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "PostgreSQL on port {} does not accept connections; log: {}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops the server (a fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]))
        .unwrap_or_else(|e| panic!("pg_ctl stop failed: {e}"));
    }

    /// Starts the server again on the same port.
    pub fn restart(&self) {
        self.start_server()
            .unwrap_or_else(|e| panic!("PostgreSQL did not start again: {e}"));
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database.
    pub fn database(&self) -> TestDb {
        let name = format!("zanzi_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        TestDb {
            url: format!("postgres://postgres@127.0.0.1:{}/{name}", self.port),
            name,
        }
    }

    /// Runs one SQL command in `database` and returns psql's unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        run(Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Starts a shell that waits for this process to end, then stops the cluster and removes
    /// its folder (a `static` is never dropped, and a killed test process drops nothing).
    fn watch_parent(&self) -> Result<(), String> {
        let stop = format!(
            "{} -D '{}' -m immediate stop",
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let stop = if self.as_root {
            format!("runuser -u postgres -- {stop}")
        } else {
            stop
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; cd /; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let _ = run(self.tool("pg_ctl").arg("-D").arg(self.data()).args([
                "-m",
                "immediate",
                "-w",
                "stop",
            ]));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a command; its stdout, or why it failed (with stderr).
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// PostgreSQL's server binaries: `PG_BIN`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/N/bin`, or `initdb` on the `PATH`.
fn find_bin() -> Result<PathBuf, String> {
    let usable = |dir: &Path| {
        ["initdb", "pg_ctl", "psql", "pg_isready"]
            .iter()
            .all(|t| dir.join(t).is_file())
    };
    if let Ok(dir) = std::env::var("PG_BIN") {
        let dir = PathBuf::from(dir);
        return if usable(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "PG_BIN={} lacks initdb, pg_ctl, psql or pg_isready",
                dir.display()
            ))
        };
    }
    if let Ok(out) = run(Command::new("pg_config").arg("--bindir")) {
        let dir = PathBuf::from(out.trim());
        if usable(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((version, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, dir)) = versions.into_iter().rev().find(|(_, dir)| usable(dir)) {
        return Ok(dir);
    }
    Err("PostgreSQL's server binaries (initdb, pg_ctl) were not found: run scripts/setup (it installs Debian's postgresql package) or set PG_BIN".to_string())
}
