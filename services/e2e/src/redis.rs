//! Real `redis-server` processes on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on 127.0.0.1 with its data in a temporary directory.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

fn redis_server() -> &'static str {
    assert!(
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok(),
        "redis-server is not installed: scripts/test.sh installs it (apt-get install redis-server)"
    );
    "redis-server"
}

impl RedisServer {
    /// Starts a standalone server.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (e.g. `--cluster-enabled yes`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_with_extra_port(|_| extra.iter().map(|s| s.to_string()).collect()).0
    }

    /// Starts a server that listens on a second port too (e.g. `--tls-port`): `extra` gets
    /// that port and returns the extra arguments. Returns the server and the second port.
    ///
    /// Ports are only "free a moment ago", so a server that exits at once (its port was taken
    /// meanwhile) is started again on fresh ports, up to three times.
    pub fn start_with_extra_port(extra: impl Fn(u16) -> Vec<String>) -> (Self, u16) {
        let dir = std::env::temp_dir().join(format!(
            "yws-redis-{}-{}",
            std::process::id(),
            crate::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let (port, second) = (crate::free_port(), crate::free_port());
            let extra = extra(second);
            match launch(&dir, port, &extra) {
                Ok(child) => {
                    let server = RedisServer {
                        child: Some(child),
                        port,
                        dir,
                        extra,
                    };
                    return (server, second);
                }
                Err(e) => failures.push(e),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("redis-server did not start:\n{}", failures.join("\n"));
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        cli(self.port, args)
    }

    /// Stops the server (SIGKILL: the AOF keeps what was fsynced).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        match launch(&self.dir, self.port, &self.extra) {
            Ok(child) => self.child = Some(child),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Starts `redis-server` on `port` with its data and log in `dir`, and waits until it answers.
fn launch(dir: &Path, port: u16, extra: &[String]) -> Result<Child, String> {
    let log_path = dir.join("redis-server.log");
    let log = std::fs::File::create(&log_path).expect("redis log file");
    let mut child = Command::new(redis_server())
        .current_dir(dir)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ])
        .args(["--dir", &dir.to_string_lossy()])
        .args(extra)
        .stdout(log.try_clone().expect("redis log file"))
        .stderr(log)
        .spawn()
        .expect("spawn redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut exited = None;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            break;
        }
        if cli(port, &["PING"])
            .map(|o| o.trim() == "PONG")
            .unwrap_or(false)
        {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    Err(format!(
        "redis-server on port {} {} (log, last lines first: {:?})",
        port,
        match exited {
            Some(status) => format!("exited at once ({status})"),
            None => "did not answer PING within 10 s".to_string(),
        },
        tail
    ))
}

/// Runs `redis-cli` against `port` and returns its output.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local 3-master Redis Cluster (`redis-cli --cluster create`), with or without replicas.
#[derive(Debug)]
pub struct RedisCluster {
    /// The servers: the masters, then (with replicas) the replicas, as created.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them into one cluster.
    pub fn start() -> Self {
        Self::start_with_replicas(0)
    }

    /// Starts `3 × (1 + replicas)` servers: three masters with `replicas` replicas each
    /// (`cluster-node-timeout` 2000 ms: a failed master's replica takes over in seconds).
    pub fn start_with_replicas(replicas: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(status.success(), "cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // Every slot served, and every replica synced (one that never synced would not
            // take over when its master fails).
            let ok = nodes.iter().all(|n| {
                let cluster_ok = n
                    .cli(&["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"));
                let replication = n.cli(&["INFO", "replication"]).unwrap_or_default();
                cluster_ok
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if ok {
                return RedisCluster { nodes };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis cluster did not become ok");
    }

    /// The index in [`nodes`](Self::nodes) of the master that owns `key`'s slot
    /// (`CLUSTER KEYSLOT`, then the slot ranges of `CLUSTER NODES`).
    pub fn owner_of(&self, key: &str) -> usize {
        self.try_owner_of(key)
            .unwrap_or_else(|| panic!("no master owns the slot of {key}"))
    }

    /// [`owner_of`](Self::owner_of), or `None` while no master owns the slot (a failover in
    /// progress).
    pub fn try_owner_of(&self, key: &str) -> Option<usize> {
        // Ask a server that is up (a test may have stopped some).
        let first = self
            .nodes
            .iter()
            .find(|n| n.cli(&["PING"]).is_some_and(|p| p.contains("PONG")))
            .expect("a live cluster node");
        let slot: u16 = first
            .cli(&["CLUSTER", "KEYSLOT", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        let table = first.cli(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        for line in table.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(port) = fields
                .get(1)
                .and_then(|a| a.split('@').next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let owns = fields.iter().skip(8).any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
            });
            if owns {
                if let Some(i) = self.nodes.iter().position(|n| n.port == port) {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Moves the slot of `key` to the master `to` (an index into [`nodes`](Self::nodes)) as
    /// `redis-cli --cluster reshard` does: `IMPORTING` / `MIGRATING`, `MIGRATE` of its keys,
    /// then `SETSLOT … NODE` on every master. The old owner then ends the slot's sharded
    /// subscriptions (`SUNSUBSCRIBE` pushes). Returns the slot.
    pub fn move_slot_of(&self, key: &str, to: usize) -> u16 {
        let from = self.owner_of(key);
        assert_ne!(from, to, "{key} is on node {to} already");
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        let id = |i: usize| {
            self.nodes[i]
                .cli(&["CLUSTER", "MYID"])
                .map(|s| s.trim().to_string())
                .expect("CLUSTER MYID")
        };
        let (from_id, to_id, s) = (id(from), id(to), slot.to_string());
        let ok = |i: usize, args: &[&str]| {
            let reply = self.nodes[i].cli(args).unwrap_or_default();
            assert!(!reply.contains("ERR"), "{args:?} on node {i}: {reply}");
        };
        ok(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]);
        ok(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]);
        let port = self.nodes[to].port.to_string();
        loop {
            let keys = self.nodes[from]
                .cli(&["CLUSTER", "GETKEYSINSLOT", &s, "100"])
                .unwrap_or_default();
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            ok(from, &args);
        }
        for i in [to, from] {
            ok(i, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        }
        for i in 0..self.nodes.len() {
            if i != to && i != from {
                ok(i, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
            }
        }
        slot
    }

    /// Whether every slot is served again (`cluster_state:ok` on a live node) and `key`'s slot
    /// is owned by a master other than `old` (a failover finished).
    pub fn failed_over(&self, key: &str, old: usize) -> bool {
        let ok = self.nodes.iter().enumerate().any(|(i, n)| {
            i != old
                && n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
        });
        ok && self.try_owner_of(key).is_some_and(|owner| owner != old)
    }

    /// `host:port,host:port,…` for `REDIS_CLUSTER_NODES`.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A primary, a replica and three Redis Sentinels watching them as `mymaster` (quorum 2,
/// `down-after-milliseconds` 1000): when the primary dies, the replica takes over in seconds.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The primary at the start.
    pub primary: RedisServer,
    /// Its replica.
    pub replica: RedisServer,
    sentinels: Vec<Child>,
    /// The Sentinels' ports.
    pub sentinel_ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts the five and waits until every Sentinel knows the replica and the others.
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica =
            RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let synced = crate::wait_until(Duration::from_secs(20), || {
            replica
                .cli(&["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"))
        });
        assert!(synced, "the replica did not sync");
        let ports: Vec<u16> = (0..3).map(|_| crate::free_port()).collect();
        let dir =
            std::env::temp_dir().join(format!("yws-sentinel-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("sentinel dir");
        let sentinels = ports
            .iter()
            .map(|port| {
                let conf = dir.join(format!("sentinel-{port}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor mymaster 127.0.0.1 {} 2\n\
                         sentinel down-after-milliseconds mymaster 1000\n\
                         sentinel failover-timeout mymaster 10000\n",
                        dir.display(),
                        primary.port
                    ),
                )
                .expect("sentinel.conf");
                let log = std::fs::File::create(dir.join(format!("sentinel-{port}.log")))
                    .expect("sentinel log");
                Command::new(redis_server())
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(log)
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server --sentinel")
            })
            .collect();
        let sentinel = RedisSentinel {
            primary,
            replica,
            sentinels,
            sentinel_ports: ports.clone(),
            dir,
        };
        let replica = sentinel.replica.port.to_string();
        let ready = crate::wait_until(Duration::from_secs(30), || {
            ports.iter().all(|&port| {
                cli(port, &["SENTINEL", "replicas", "mymaster"])
                    .is_some_and(|r| r.contains(&replica))
                    && cli(port, &["SENTINEL", "sentinels", "mymaster"]).is_some_and(|r| {
                        ports.iter().filter(|p| r.contains(&p.to_string())).count() >= 2
                    })
            })
        });
        assert!(
            ready,
            "the sentinels did not find the replica and each other"
        );
        sentinel
    }

    /// `host:port,…` for `REDIS_SENTINELS`.
    pub fn sentinels(&self) -> String {
        self.sentinel_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the server the first Sentinel names as primary now.
    pub fn primary_port(&self) -> Option<u16> {
        cli(
            self.sentinel_ports[0],
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
        )?
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
    }

    /// Runs `redis-cli` against the first Sentinel.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        cli(self.sentinel_ports[0], args)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for child in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
