//! A highly-available PostgreSQL for tests: one etcd member and a few
//! Patroni instances (Debian's `etcd-server` and `patroni`, PostgreSQL 15's
//! binaries), all on loopback ephemeral ports in one temporary folder,
//! bootstrapped with `synchronous_mode: true` so that a commit is on a
//! standby before it returns and a failover promotes only that standby.
//! Ready means a leader, every replica streaming with no lag and a
//! synchronous standby named, and a `tern` role owning a `tern` database.
//! Switchovers go through `patronictl`; a crash is SIGKILL to a node's
//! Patroni and its postmaster. On drop every process is killed: each
//! Patroni's process group, each postmaster (Patroni starts it in a
//! session of its own, and PostgreSQL's children leave their parent's
//! group, so `pg_ctl stop -m immediate` takes the whole server down),
//! etcd's group. PostgreSQL refuses to run as root, so under root every
//! process runs as Debian's `postgres` user, as `PrivatePostgres` does.

use super::{READY_BOUND, wait_for};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tern::testing::ports::free_port;
use tern::testing::postgres::hand_to_postgres_if_root;
use tern::testing::reaper::{Registered, Watched, spawn_group, watch_pid_file};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const SUPERUSER_PASSWORD: &str = "patroni-su";
/// The password of the `tern` role the cluster creates.
pub const TERN_PASSWORD: &str = "tern-on-patroni";

/// Why the cluster cannot be started here (a program missing), if so.
pub fn missing() -> Option<String> {
    let found = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(p).is_file()))
    };
    let mut missing: Vec<String> = ["etcd", "patroni", "patronictl"]
        .into_iter()
        .filter(|p| !found(p))
        .map(str::to_string)
        .collect();
    if !Path::new(PG_BIN).join("initdb").exists() {
        missing.push(format!("{PG_BIN}/initdb"));
    }
    (!missing.is_empty()).then(|| {
        format!(
            "{} not installed (Debian's patroni, etcd-server, postgresql-15: \
             run scripts/install-test-deps)",
            missing.join(", ")
        )
    })
}

/// One member as Patroni's REST API reports it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// leader, sync_standby, replica
    pub role: String,
    /// running, streaming, stopped, …
    pub state: String,
    pub lag: Option<i64>,
}

struct Node {
    name: String,
    pg_port: u16,
    api_port: u16,
    config: PathBuf,
    data: PathBuf,
    patroni: Option<Watched>,
    /// The PostgreSQL Patroni starts (in a session of its own), should the
    /// test process be killed.
    _postgres: Registered,
}

pub struct PatroniCluster {
    dir: PathBuf,
    run_as: Option<(u32, u32)>,
    etcd: Option<Watched>,
    nodes: Vec<Node>,
}

impl PatroniCluster {
    /// Starts etcd and `members` Patroni nodes and waits until the cluster
    /// is ready (see the module's text); panics with the logs if it is not
    /// within a generous bound.
    pub fn start(members: usize) -> PatroniCluster {
        let dir = std::env::temp_dir().join(format!(
            "tern-patroni-{}-{:016x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("create the Patroni test folder");
        let run_as = hand_to_postgres_if_root(&dir);
        let mut cluster = PatroniCluster {
            dir,
            run_as,
            etcd: None,
            nodes: Vec::new(),
        };
        let etcd_port = cluster.start_etcd();
        for i in 1..=members {
            let node = cluster.configure_node(&format!("n{i}"), etcd_port);
            cluster.nodes.push(node);
        }
        for i in 0..cluster.nodes.len() {
            cluster.start_patroni(i);
        }
        cluster.wait_healthy(members, Duration::from_secs(120));
        let leader = cluster.leader().expect("a leader");
        cluster.psql(
            &leader,
            &format!("CREATE ROLE tern LOGIN PASSWORD '{TERN_PASSWORD}'"),
        );
        cluster.psql(&leader, "CREATE DATABASE tern OWNER tern");
        cluster
    }

    /// `postgresql://tern:…@127.0.0.1:P1,127.0.0.1:P2,…/tern` with
    /// `target_session_attrs=read-write`: whichever member is the primary.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.pg_port))
            .collect();
        format!(
            "postgresql://tern:{TERN_PASSWORD}@{}/tern?target_session_attrs=read-write&sslmode=disable",
            hosts.join(",")
        )
    }

    /// The members the REST API of any live node reports (empty if none
    /// answers).
    pub fn members(&self) -> Vec<Member> {
        for node in self.nodes.iter().filter(|n| n.patroni.is_some()) {
            if let Some(members) =
                http_get(node.api_port, "/cluster").and_then(|body| parse_members(&body))
            {
                return members;
            }
        }
        Vec::new()
    }

    /// The name of the member that holds the leader key now.
    pub fn leader(&self) -> Option<String> {
        self.members()
            .into_iter()
            .find(|m| m.role == "leader" && m.state == "running")
            .map(|m| m.name)
    }

    /// The synchronous standby's name, if there is one now.
    pub fn sync_standby(&self) -> Option<String> {
        self.members()
            .into_iter()
            .find(|m| m.role == "sync_standby" && (m.state == "running" || m.state == "streaming"))
            .map(|m| m.name)
    }

    /// Waits until `members` nodes run: one leader, the others replicas
    /// streaming with no lag, one of them the synchronous standby, and the
    /// leader's PostgreSQL accepting writes.
    pub fn wait_healthy(&self, members: usize, bound: Duration) {
        let started = std::time::Instant::now();
        loop {
            let now = self.members();
            let running = now
                .iter()
                .filter(|m| m.state == "running" || m.state == "streaming")
                .count();
            let lagging = now
                .iter()
                .filter(|m| m.role != "leader" && m.lag != Some(0))
                .count();
            let healthy = running == members
                && lagging == 0
                && now.iter().filter(|m| m.role == "leader").count() == 1
                && now.iter().any(|m| m.role == "sync_standby")
                && self.leader().is_some_and(|l| {
                    self.try_psql(&l, "SELECT pg_is_in_recovery()").as_deref() == Some("f")
                });
            if healthy {
                return;
            }
            if started.elapsed() > bound {
                panic!(
                    "the Patroni cluster is not healthy after {bound:?}: {now:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A planned switchover to `candidate` (`patronictl switchover --force`).
    pub fn switchover(&self, candidate: &str) {
        let leader = self.leader().expect("a leader to switch over from");
        let out = self.patronictl(&[
            "switchover",
            "--leader",
            &leader,
            "--candidate",
            candidate,
            "--force",
        ]);
        assert!(
            out.status.success(),
            "patronictl switchover failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A crash: SIGKILL to the node's Patroni and to its postmaster (whose
    /// children exit when they see it gone). Nothing stops cleanly.
    pub fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no member {name}"));
        // Dropping a `Watched` kills its process group.
        drop(node.patroni.take());
        if let Some(pid) = postmaster_pid(&node.data) {
            // SAFETY: the postmaster of this node's data folder (checked
            // against /proc in `postmaster_pid`).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Every node's Patroni log and etcd's, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in std::iter::once("etcd").chain(self.nodes.iter().map(|n| n.name.as_str())) {
            let log =
                std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            out.push_str(&format!("--- {name} (last lines)\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Runs `sql` on `member` as the superuser; panics if psql fails.
    pub fn psql(&self, member: &str, sql: &str) -> String {
        let out = self.psql_output(member, sql);
        assert!(
            out.status.success(),
            "psql on {member} failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn try_psql(&self, member: &str, sql: &str) -> Option<String> {
        let out = self.psql_output(member, sql);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn psql_output(&self, member: &str, sql: &str) -> Output {
        let node = self.node(member);
        let mut command = Command::new(Path::new(PG_BIN).join("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &node.pg_port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null());
        command.output().expect("run psql")
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    fn patronictl(&self, args: &[&str]) -> Output {
        let config = &self
            .nodes
            .iter()
            .find(|n| n.patroni.is_some())
            .expect("a live node")
            .config;
        let mut command = Command::new("patronictl");
        command
            .arg("-c")
            .arg(config)
            .args(args)
            .stdin(Stdio::null());
        self.as_owner(&mut command);
        command.output().expect("run patronictl")
    }

    /// Runs `command` as the folder's owner, in a process group of its
    /// own, its output to `NAME.log` in the folder.
    fn spawn_logged(&self, mut command: Command, name: &str) -> Watched {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).expect("log file");
        if let Some((uid, gid)) = self.run_as {
            let _ = std::os::unix::fs::chown(
                self.dir.join(format!("{name}.log")),
                Some(uid),
                Some(gid),
            );
        }
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.as_owner(&mut command);
        spawn_group(&mut command).unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
    }

    fn as_owner(&self, command: &mut Command) {
        command.env("HOME", &self.dir);
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
    }

    fn start_etcd(&mut self) -> u16 {
        let (client, peer) = (free_port(), free_port());
        let mut command = Command::new("etcd");
        command
            .arg("--name")
            .arg("e1")
            .arg("--data-dir")
            .arg(self.dir.join("etcd"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster=e1=http://127.0.0.1:{peer}"))
            .args(["--initial-cluster-state=new", "--log-level=warn"]);
        self.etcd = Some(self.spawn_logged(command, "etcd"));
        wait_for("etcd to be healthy", READY_BOUND, || {
            if let Some(Ok(Some(status))) = self.etcd.as_mut().map(|c| c.try_wait()) {
                panic!("etcd exited ({status}):\n{}", self.logs());
            }
            http_get(client, "/health").filter(|b| b.contains("\"health\":\"true\""))
        });
        client
    }

    fn configure_node(&self, name: &str, etcd_port: u16) -> Node {
        let home = self.dir.join(name);
        std::fs::create_dir_all(&home).expect("node folder");
        let (pg_port, api_port) = (free_port(), free_port());
        let data = home.join("data");
        let config = home.join("patroni.yml");
        let text = format!(
            "scope: tern-test
name: {name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{api_port}
  connect_address: 127.0.0.1:{api_port}
etcd3:
  hosts: 127.0.0.1:{etcd_port}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: 'on'
        fsync: 'off'
        max_connections: 100
  initdb:
    - encoding: UTF8
    - no-sync
postgresql:
  listen: 127.0.0.1:{pg_port}
  connect_address: 127.0.0.1:{pg_port}
  data_dir: {data}
  bin_dir: {PG_BIN}
  pgpass: {home}/pgpass
  authentication:
    superuser: {{username: postgres, password: {SUPERUSER_PASSWORD}}}
    replication: {{username: replicator, password: replicator-pw}}
    rewind: {{username: postgres, password: {SUPERUSER_PASSWORD}}}
  parameters:
    unix_socket_directories: {home}
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
",
            data = data.display(),
            home = home.display(),
        );
        std::fs::write(&config, text).expect("write the Patroni config");
        if let Some((uid, gid)) = self.run_as {
            for p in [&home, &config] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        Node {
            name: name.to_string(),
            pg_port,
            api_port,
            config,
            _postgres: watch_pid_file(&data.join("postmaster.pid")),
            data,
            patroni: None,
        }
    }

    fn start_patroni(&mut self, i: usize) {
        let mut command = Command::new("patroni");
        command.arg(&self.nodes[i].config);
        let child = self.spawn_logged(command, &self.nodes[i].name.clone());
        self.nodes[i].patroni = Some(child);
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        // Dropping a `Watched` kills its process group.
        for node in &mut self.nodes {
            drop(node.patroni.take());
        }
        for node in &self.nodes {
            if node.data.join("postmaster.pid").exists() {
                let mut command = Command::new(Path::new(PG_BIN).join("pg_ctl"));
                command
                    .arg("-D")
                    .arg(&node.data)
                    .args(["-m", "immediate", "-w", "-t", "20", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                self.as_owner(&mut command);
                let _ = command.status();
            }
        }
        drop(self.etcd.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The postmaster's pid from `DATA/postmaster.pid`, if that process is
/// still a postgres of this folder.
fn postmaster_pid(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains(&*data.to_string_lossy()).then_some(pid)
}

/// `GET path` on a loopback port; the body of a 2xx answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    status.starts_with('2').then(|| body.to_string())
}

fn parse_members(body: &str) -> Option<Vec<Member>> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let members = json.get("members")?.as_array()?;
    Some(
        members
            .iter()
            .map(|m| Member {
                name: m["name"].as_str().unwrap_or_default().to_string(),
                role: m["role"].as_str().unwrap_or_default().to_string(),
                state: m["state"].as_str().unwrap_or_default().to_string(),
                lag: m.get("lag").and_then(serde_json::Value::as_i64),
            })
            .collect(),
    )
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
