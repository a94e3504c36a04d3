//! Crashes and restarts with real processes on loopback: a server killed
//! mid-run and restarted (on SQLite and on PostgreSQL), with a remote agent
//! that keeps its try across the restart and with the server's built-in
//! agent whose try runs again; a PostgreSQL instance of the test's own
//! stopped and started mid-run; and two servers on one PostgreSQL with
//! three agents, one server killed while a schedule fires.
//!
//! Blocks take a lock file for their whole life and record their start and
//! end, so that a test sees any overlap, and print numbered lines, so that
//! it sees any lost or repeated log line.

mod common;
#[macro_use]
mod fleet;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{PgSchema, wait_until};
use fleet::{Backend, Setup, TIMEOUT, World};
use serde_json::Value;

on_both_backends!(
    a_remote_agent_keeps_its_try_across_a_server_crash,
    a_crashed_server_s_try_runs_again_after_a_restart_never_twice_at_once,
);

/// A block that prints lines 1 to 20, waits for the file `gate` (in the
/// test's directory, `$TEST_DIR`, not in its copy of the project), then
/// prints lines 21 to 40; `labels` is its `labels:` line (or nothing).
fn numbered(labels: &str) -> String {
    format!(
        r#"
blocks:
  numbered:
    {labels}
    retries: 1
    run: |
      cd "$TEST_DIR"
      exec 9>> block.lock
      flock -n 9 || {{ echo "overlap $SLUICE_TRY" >> events.log; exit 3; }}
      echo "start $SLUICE_TRY" >> events.log
      echo $$ > "pid.$SLUICE_TRY"
      i=1
      while [ $i -le 20 ]; do echo "line $i"; i=$((i+1)); done
      while [ ! -e gate ]; do sleep 0.05; done
      while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); done
      echo "end $SLUICE_TRY" >> events.log
"#
    )
}

fn lines(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|i| format!("line {i}")).collect()
}

/// The id of the run's `numbered` block run, once it has a try whose
/// stored log shows `line 20`.
fn wait_for_line_20(world: &World, run: &str, try_number: u64) -> String {
    let mut id = String::new();
    wait_until(
        &format!("try {try_number} to print line 20"),
        TIMEOUT,
        || {
            let block_run = world.block_run(run, "numbered");
            let tries = block_run["tries"].as_array().map_or(0, Vec::len);
            if tries < try_number as usize {
                return false;
            }
            id = block_run["id"].as_str().expect("an id").to_owned();
            world
                .log_lines(&id, try_number)
                .contains(&"line 20".to_owned())
        },
    );
    id
}

fn events(world: &World) -> String {
    std::fs::read_to_string(world.project.path().join("events.log")).unwrap_or_default()
}

fn tries(world: &World, run: &str) -> Vec<Value> {
    world.block_run(run, "numbered")["tries"]
        .as_array()
        .expect("tries")
        .clone()
}

/// A remote agent outlives a server crash: the try goes on while no server
/// answers, its log chunks and its end wait in the agent until the
/// restarted server takes them, and nothing runs twice.
fn a_remote_agent_keeps_its_try_across_a_server_crash(backend: Backend) {
    let pipeline = numbered("labels: {pool: remote}");
    let Some(mut world) = World::on(
        backend,
        &[("numbered", pipeline.as_str())],
        &["--lease-ttl", "10s"],
    ) else {
        return;
    };
    let agent = world.agent("steady", "pool=remote");
    let run = world.trigger("numbered");
    let id = wait_for_line_20(&world, &run, 1);

    world.crash_server();
    // Lines 21 to 40 and the try's end happen while no server answers.
    std::fs::write(world.project.path().join("gate"), "open").expect("the gate");
    wait_until(
        "the block to end while the server is down",
        Duration::from_secs(10),
        || events(&world).contains("end 1"),
    );
    world.restart_server();

    world.wait_for_run(&run, "completed");
    let tries = tries(&world, &run);
    assert_eq!(tries.len(), 1, "one try, never run again: {tries:?}");
    assert_eq!(tries[0]["status"], "completed", "{tries:?}");
    assert!(
        tries[0]["executor"]
            .as_str()
            .is_some_and(|executor| executor.starts_with("agent-steady-")),
        "{tries:?}"
    );
    assert_eq!(
        world.log_lines(&id, 1),
        lines(1, 40),
        "every line once, in order; agent log:\n{}",
        agent.log()
    );
    assert_eq!(events(&world), "start 1\nend 1\n");
}

/// The built-in agent dies with its server: the server's guardian kills the
/// try's processes at once, the restarted server finds the try's lease
/// expired, the try is lost and runs again (a retry of the block's
/// policy), and the two tries never overlap.
fn a_crashed_server_s_try_runs_again_after_a_restart_never_twice_at_once(backend: Backend) {
    let pipeline = numbered("");
    let Some(mut world) = World::start(backend, &[("numbered", pipeline.as_str())]) else {
        return;
    };
    let run = world.trigger("numbered");
    let id = wait_for_line_20(&world, &run, 1);
    let pid: i32 = std::fs::read_to_string(world.project.path().join("pid.1"))
        .expect("the first try's pid")
        .trim()
        .parse()
        .expect("a pid");

    world.crash_server();
    wait_until(
        "the crashed server's block to be gone",
        Duration::from_secs(5),
        || !Path::new(&format!("/proc/{pid}")).exists(),
    );
    world.restart_server();
    wait_for_line_20(&world, &run, 2);
    std::fs::write(world.project.path().join("gate"), "open").expect("the gate");

    world.wait_for_run(&run, "completed");
    let tries = tries(&world, &run);
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0]["status"], "lost", "{tries:?}");
    assert_eq!(tries[1]["status"], "completed", "{tries:?}");
    assert_eq!(events(&world), "start 1\nstart 2\nend 2\n", "no overlap");
    assert_eq!(
        world.log_lines(&id, 1),
        lines(1, 20),
        "what the first try printed is stored once, in order"
    );
    assert_eq!(world.log_lines(&id, 2), lines(1, 40));
}

/// Whether this process's effective user is root (`Uid:` in
/// `/proc/self/status` lists the real, effective, saved and file-system
/// ids).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        .unwrap_or(false)
}

/// A PostgreSQL server of the test's own, in a temporary directory, on a
/// free port: the machine's shared one must not be restarted. PostgreSQL
/// refuses to run as root, so as root it runs as the `postgres` user.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    server: Option<Child>,
}

impl PrivatePostgres {
    /// Initialises and starts the instance; `None` (with a line saying so)
    /// when PostgreSQL's programs are not installed, a failure instead when
    /// `SLUICE_REQUIRE_POSTGRES=1`.
    fn start(test: &str) -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max();
        let Some(bin) = bin else {
            if std::env::var("SLUICE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{test}: SLUICE_REQUIRE_POSTGRES=1 but initdb is not installed");
            }
            eprintln!("skipped {test}: initdb is not installed under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        if running_as_root() {
            let owned = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(owned.success(), "chown the data directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut instance = PrivatePostgres {
            dir,
            bin,
            port,
            server: None,
        };
        let data = instance.data();
        let initialised = instance
            .command("initdb")
            .args(["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"])
            .args(["-E", "UTF8"])
            .output()
            .expect("initdb");
        assert!(
            initialised.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initialised.stderr)
        );
        instance.resume();
        Some(instance)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as `postgres` when this is root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    fn resume(&mut self) {
        let socket_dir = self.dir.path().display().to_string();
        let log = std::fs::File::create(
            std::env::temp_dir().join(format!("sluice-private-postgres-{}.log", self.port)),
        )
        .expect("a log file");
        let server = self
            .command("postgres")
            .args(["-D", &self.data(), "-p", &self.port.to_string()])
            .args(["-k", &socket_dir, "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.server = Some(server);
        let url = self.url();
        wait_until(
            "the private PostgreSQL to accept connections",
            TIMEOUT,
            || {
                Command::new("psql")
                    .args([url.as_str(), "-Atqc", "SELECT 1"])
                    .output()
                    .is_ok_and(|output| output.status.success())
            },
        );
    }

    /// Stops the server (fast shutdown: sessions are ended) and waits for
    /// it to be gone.
    fn stop(&mut self, mode: &str) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-D", &self.data(), "-m", mode, "-w"])
            .output();
        if let Some(mut server) = self.server.take() {
            let _ = server.wait();
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.stop("immediate");
        }
    }
}

#[test]
fn a_postgresql_restart_mid_run_answers_503_then_reconnects_and_loses_nothing() {
    let test = "a_postgresql_restart_mid_run_answers_503_then_reconnects_and_loses_nothing";
    let Some(mut database) = PrivatePostgres::start(test) else {
        return;
    };
    let pipeline = numbered("");
    let world = World::with(Setup {
        pipelines: &[("numbered", pipeline.as_str())],
        database: Some(database.url()),
        // The database stays away for less than a lease lasts, so the try
        // keeps its lease.
        server_args: &["--lease-ttl", "30s"],
    });
    let run = world.trigger("numbered");
    let id = wait_for_line_20(&world, &run, 1);

    database.stop("fast");
    let (status, body) = world
        .try_call_at(
            &world.base,
            reqwest::Method::GET,
            "/readyz",
            &world.operator,
            None,
        )
        .expect("an answer");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let (status, body) = world.call(
        reqwest::Method::GET,
        &format!("/api/pipeline_runs/{run}"),
        &world.operator,
        None,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // Lines 21 to 40 and the try's end happen while the database is away.
    std::fs::write(world.project.path().join("gate"), "open").expect("the gate");
    wait_until(
        "the block to end while the database is away",
        Duration::from_secs(10),
        || events(&world).contains("end 1"),
    );

    database.resume();
    wait_until("the server to be ready again", TIMEOUT, || {
        world
            .try_call_at(
                &world.base,
                reqwest::Method::GET,
                "/readyz",
                &world.operator,
                None,
            )
            .is_some_and(|(status, _)| status == 200)
    });
    world.wait_for_run(&run, "completed");
    let tries = tries(&world, &run);
    assert_eq!(tries.len(), 1, "{tries:?}");
    assert_eq!(tries[0]["status"], "completed", "{tries:?}");
    assert_eq!(world.log_lines(&id, 1), lines(1, 40));
    assert_eq!(events(&world), "start 1\nend 1\n");
    let log = world.server.log();
    assert!(
        log.contains("the engine loop works again"),
        "the server says it recovered: {log}"
    );
}

/// A pipeline fired every second whose block runs on remote agents; each
/// try records its start and end under a lock of its run.
const SCHEDULED: &str = r#"
triggers:
  - name: often
    every: 1s
blocks:
  work:
    labels: {pool: remote}
    retries: 2
    run: |
      cd "$TEST_DIR"
      exec 9>> "lock.$SLUICE_RUN_ID"
      flock -n 9 || { echo "overlap $SLUICE_RUN_ID $SLUICE_TRY" >> events.log; exit 3; }
      echo "start $SLUICE_RUN_ID $SLUICE_TRY" >> events.log
      sleep 0.3
      echo "end $SLUICE_RUN_ID $SLUICE_TRY" >> events.log
"#;

#[test]
fn two_servers_share_one_postgresql_and_one_survives_the_other_s_crash() {
    let Some(schema) = PgSchema::create("two_servers_share_one_postgresql") else {
        return;
    };
    let mut world = World::with(Setup {
        pipelines: &[("scheduled", SCHEDULED)],
        database: Some(schema.database.clone()),
        server_args: &["--no-local-agent"],
    });
    let (survivor, survivor_base) = world.another_server(&[]);
    let _first = world.agent("first", "pool=remote");
    let _second = world.agent("second", "pool=remote");
    let _third = world.agent_at(&survivor_base, "third", "pool=remote");
    let count = |sql: &str| -> u64 { schema.query(sql).parse().expect("a count") };

    wait_until("runs to complete on both servers", TIMEOUT, || {
        count("SELECT count(*) FROM pipeline_run WHERE status = 'completed'") >= 4
    });
    world.crash_server();
    let crashed_at = jiff::Timestamp::now().as_microsecond();
    // The survivor keeps firing the schedule, and its agent runs the runs,
    // including whatever the crashed server's agents can no longer report.
    wait_until(
        "the survivor to go on scheduling and serving",
        TIMEOUT,
        || {
            count(&format!(
                "SELECT count(*) FROM pipeline_run WHERE status = 'completed' AND scheduled_for > {crashed_at}"
            )) >= 4
        },
    );
    let (status, body) = world
        .try_call_at(
            &survivor_base,
            reqwest::Method::POST,
            "/api/triggers/scheduled/often/pause",
            &world.operator,
            None,
        )
        .expect("an answer");
    assert!(status < 300, "pause: {status} {body}");
    wait_until("every run to end", TIMEOUT, || {
        count(
            "SELECT count(*) FROM pipeline_run WHERE status NOT IN ('completed', 'failed', 'cancelled')",
        ) == 0
    });

    let duplicated = schema
        .query("SELECT scheduled_for FROM pipeline_run GROUP BY scheduled_for HAVING count(*) > 1");
    assert_eq!(duplicated, "", "one run per fire");
    let not_completed =
        schema.query("SELECT id || ' ' || status FROM pipeline_run WHERE status <> 'completed'");
    assert_eq!(not_completed, "", "every run completed");
    // Every block run completed once; any other try of it was lost with
    // the crashed server's agents and never ran beside the one that won.
    let extra = schema.query(
        "SELECT block_run_id || ' ' || try_number || ' ' || status FROM block_try \
         WHERE status NOT IN ('completed', 'lost')",
    );
    assert_eq!(extra, "", "no try failed or was cancelled");
    let completed_twice = schema.query(
        "SELECT block_run_id FROM block_try WHERE status = 'completed' \
         GROUP BY block_run_id HAVING count(*) > 1",
    );
    assert_eq!(completed_twice, "", "no block run completed twice");
    let recorded = events(&world);
    assert!(!recorded.contains("overlap"), "{recorded}");
    let ends: Vec<&str> = recorded
        .lines()
        .filter(|line| line.starts_with("end "))
        .collect();
    let runs = count("SELECT count(*) FROM pipeline_run");
    let mut ended_runs: Vec<&str> = ends
        .iter()
        .map(|line| line.split(' ').nth(1).expect("a run id"))
        .collect();
    ended_runs.sort_unstable();
    ended_runs.dedup();
    assert_eq!(
        ended_runs.len() as u64,
        runs,
        "each run's block ended: {recorded}"
    );
    drop(survivor);
}
