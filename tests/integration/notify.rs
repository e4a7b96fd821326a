//! `[[notify]]` hooks against a real HTTP/1.1 server on 127.0.0.1 (a thread of this test
//! binary), and the audit line every check appends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::util::{collection, example, Run, Workdir};

/// One request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.path, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A small HTTP/1.1 server: parses the request line, the headers and a Content-Length
/// body, records the request, and answers with the status `answer` gives for it (the
/// number of earlier requests to the same path, the path) and `Connection: close`.
pub(crate) struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(answer: fn(usize, &str) -> u16) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::<Request>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most ten minutes, and until the test drops the server.
            let until = std::time::Instant::now() + Duration::from_secs(600);
            while !stopping.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(req) = serve(stream, &reqs, answer) {
                            reqs.lock().unwrap().push(req);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Server {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    done: &Mutex<Vec<Request>>,
    answer: fn(usize, &str) -> u16,
) -> Option<Request> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    assert!(version.starts_with("HTTP/1."), "{line:?}");
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let earlier = done
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path)
        .count();
    let status = answer(earlier, path);
    let mut out = stream;
    let text = if status < 300 { "ok" } else { "no" };
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if status < 300 { "OK" } else { "Error" },
        text.len()
    )
    .ok()?;
    out.flush().ok()?;
    Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    })
}

/// `check` of the example dump in `w`, with `extra` arguments and environment.
fn check(w: &Workdir, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let schemas = example().join("schemas");
    let dump = format!("dump:{}", example().join("data/dump").display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docsweep"));
    cmd.args(["check", "--no-progress", "--source", &dump, "--schemas"])
        .arg(&schemas)
        .args(extra)
        .current_dir(w.path())
        .env_remove("RUST_BACKTRACE");
    // The test server is on 127.0.0.1: no proxy in between.
    for var in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run docsweep");
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

fn config(w: &Workdir, toml: &str) {
    std::fs::write(w.path().join("docsweep.toml"), toml).unwrap();
}

fn audit_lines(w: &Workdir, file: &str) -> Vec<Value> {
    w.read(file)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn webhooks_retry_after_a_500_in_every_format() {
    // The first request to each path fails with a 500, the next ones succeed.
    let server = Server::start(|earlier, _| if earlier == 0 { 500 } else { 200 });
    let w = Workdir::new();
    config(
        &w,
        &format!(
            r#"
[[notify]]
on = ["findings"]
webhook = "{}"
backoff_ms = 10
[[notify]]
on = ["findings"]
webhook = "{}"
format = "slack"
backoff_ms = 10
[[notify]]
on = ["findings"]
webhook = "{}"
format = "pagerduty"
routing_key_env = "TEST_PD_KEY"
backoff_ms = 10
"#,
            server.url("/json"),
            server.url("/slack"),
            server.url("/pd")
        ),
    );
    let run = check(&w, &[], &[("TEST_PD_KEY", "R0UTING")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("notify["), "{}", run.stderr);
    let report = w.read_json("docsweep-report/report.json");

    let json = server.requests("/json");
    assert_eq!(json.len(), 2, "a 500, then the retry");
    for r in &json {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(v["status"], "findings");
        assert_eq!(v["source"], report["source"]);
        assert_eq!(v["finished_at"], report["finished_at"]);
        let orders = collection(&v, "orders");
        let want = collection(&report, "orders");
        assert_eq!(orders["documents"], want["documents"]);
        assert_eq!(orders["verdict"], "fail");
        assert_eq!(orders["counts"]["invalid"], want["classes"]["invalid"]);
    }
    assert_eq!(json[0].body, json[1].body);

    let slack = server.requests("/slack");
    assert_eq!(slack.len(), 2);
    let text = slack[1].json()["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("FINDINGS") && text.contains("orders") && text.contains("invalid 24"),
        "{text}"
    );
    assert!(text.contains("report.json"), "{text}");

    let pd = server.requests("/pd");
    let events: Vec<Value> = pd.iter().map(Request::json).collect();
    // One event per collection with findings (both have some), the first one twice.
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], events[1]);
    let mut keys = Vec::new();
    for e in &events[1..] {
        assert_eq!(e["routing_key"], "R0UTING");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["payload"]["severity"], "critical");
        assert_eq!(e["payload"]["source"], report["source"]);
        assert!(e["payload"]["summary"].as_str().unwrap().len() <= 1024);
        assert!(e["payload"]["custom_details"]["counts"].is_object());
        keys.push(e["dedup_key"].as_str().unwrap().to_string());
    }
    let source = report["source"].as_str().unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("docsweep:{source}:customers"),
            format!("docsweep:{source}:orders")
        ]
    );

    // The audit line says what the hooks did.
    let audit = audit_lines(&w, "docsweep-audit.jsonl");
    let notified = audit.last().unwrap()["notify"].as_array().unwrap().clone();
    assert_eq!(notified.len(), 3);
    assert!(notified.iter().all(|n| n["ok"] == true), "{notified:?}");
    assert_eq!(notified[0]["attempts"], 2);
}

#[test]
fn a_failing_webhook_is_reported_masked_and_only_a_required_one_changes_the_exit_code() {
    let server = Server::start(|_, _| 503);
    let w = Workdir::new();
    let secret_url = server.url("/services/T0SECRET/B0?token=TOPSECRET");
    let toml = format!(
        "[[notify]]\non = [\"always\"]\nwebhook = \"{secret_url}\"\nretries = 2\nbackoff_ms = 10\n"
    );
    config(&w, &toml);
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 1, "findings, as without the hook: {}", run.stderr);
    let masked = format!("http://127.0.0.1:{}/…", server.port);
    assert!(
        run.stderr.contains("notify[0]")
            && run.stderr.contains(&masked)
            && run.stderr.contains("HTTP 503"),
        "{}",
        run.stderr
    );
    let all = format!(
        "{}{}{}",
        run.stdout,
        run.stderr,
        w.read("docsweep-audit.jsonl")
    );
    assert!(!all.contains("SECRET"), "{all}");
    assert_eq!(server.requests.lock().unwrap().len(), 3, "1 + 2 retries");
    assert!(w.path().join("docsweep-report/report.json").is_file());
    let last = audit_lines(&w, "docsweep-audit.jsonl").pop().unwrap();
    assert_eq!(last["notify"][0]["ok"], false);
    assert_eq!(last["status"], "findings");

    config(
        &w,
        &format!(
            "{}required = true\n",
            toml.replace("retries = 2", "retries = 0")
        ),
    );
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("required") && run.stderr.contains(&masked),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SECRET"), "{}", run.stderr);
    // The report itself still says what was found.
    assert_eq!(
        w.read_json("docsweep-report/report.json")["status"],
        "findings"
    );

    // --no-notify runs none.
    let before = server.requests.lock().unwrap().len();
    let run = check(&w, &["--no-notify"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(server.requests.lock().unwrap().len(), before);
}

#[test]
fn webhook_env_reads_the_url_from_the_environment() {
    let server = Server::start(|_, _| 204);
    let w = Workdir::new();
    config(
        &w,
        "[[notify]]\non = [\"findings\"]\nwebhook_env = \"TEST_HOOK_URL\"\n",
    );
    let url = server.url("/hook/abc");
    let run = check(&w, &[], &[("TEST_HOOK_URL", &url)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(server.requests("/hook/abc").len(), 1, "{}", run.stderr);

    // Without the variable: a usage error before any scan.
    let w = Workdir::new();
    config(
        &w,
        "[[notify]]\non = [\"findings\"]\nwebhook_env = \"TEST_HOOK_URL_UNSET\"\n",
    );
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("docsweep.toml")
            && run.stderr.contains("notify[0].webhook_env")
            && run.stderr.contains("TEST_HOOK_URL_UNSET"),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("docsweep-report").exists());
}

#[test]
fn a_command_hook_gets_the_summary_on_stdin_and_the_environment() {
    let w = Workdir::new();
    config(
        &w,
        "[[notify]]\non = [\"findings\"]\ncommand = [\"sh\", \"-c\", \"cat > got.txt; env > env.txt\"]\n",
    );
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(w.read("got.txt"), run.stdout, "the summary, as printed");
    let env = w.read("env.txt");
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in {env}"))
            .to_string()
    };
    assert_eq!(var("DOCSWEEP_STATUS"), "findings");
    let report = std::path::PathBuf::from(var("DOCSWEEP_REPORT"));
    assert!(report.is_absolute() && report.is_file(), "{report:?}");
    assert_eq!(
        var("DOCSWEEP_SOURCE"),
        w.read_json("docsweep-report/report.json")["source"]
    );

    // A failing command is retried and reported; the exit code stays.
    config(
        &w,
        "[[notify]]\non = [\"findings\"]\ncommand = [\"sh\", \"-c\", \"echo x >> tries.txt; exit 7\"]\nretries = 1\nbackoff_ms = 10\n",
    );
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(w.read("tries.txt").lines().count(), 2);
    assert!(
        run.stderr.contains("notify[0]") && run.stderr.contains("exit status: 7"),
        "{}",
        run.stderr
    );
}

#[test]
fn hooks_fire_only_on_their_events() {
    let w = Workdir::new();
    let hook = |on: &str, file: &str| {
        format!("[[notify]]\non = [{on}]\ncommand = [\"sh\", \"-c\", \"touch {file}\"]\n")
    };
    let toml = [
        hook("\"failed\"", "failed"),
        hook("\"clean\", \"warn\"", "clean"),
        hook("\"new\"", "new"),
        hook("\"always\"", "always"),
    ]
    .concat();
    config(&w, &toml);
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let fired = |f: &str| w.path().join(f).exists();
    assert!(!fired("failed") && !fired("clean"));
    assert!(fired("new"), "new fires on findings");
    assert!(fired("always"));
}

#[test]
fn bad_notify_entries_are_usage_errors_naming_the_key_before_any_scan() {
    let w = Workdir::new();
    for (toml, key) in [
        (
            "on = [\"findings\"]\ncommand = [\"true\"]\nwebhok = \"x\"\n",
            "webhok",
        ),
        (
            "on = [\"findings\"]\ncommand = [\"true\"]\nwebhook = \"https://h.example/x\"\n",
            "notify[0]: give exactly one",
        ),
        (
            "on = [\"findings\"]\nwebhook = \"https://h.example/x\"\nformat = \"teams\"\n",
            "notify[0].format",
        ),
        ("on = []\ncommand = [\"true\"]\n", "notify[0].on"),
        (
            "on = [\"findings\", \"sometimes\"]\ncommand = [\"true\"]\n",
            "notify[0].on",
        ),
        ("command = [\"true\"]\n", "on"),
    ] {
        config(&w, &format!("[[notify]]\n{toml}"));
        let run = check(&w, &[], &[]);
        assert_eq!(run.code, 2, "{toml}: {}", run.stderr);
        assert!(
            run.stderr.contains("docsweep.toml") && run.stderr.contains(key),
            "{toml}: {}",
            run.stderr
        );
        assert!(!w.path().join("docsweep-report").exists(), "{toml}");
    }
}

#[test]
fn every_check_appends_an_audit_line() {
    let w = Workdir::new();
    let run = check(&w, &["--actor", "tester"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = w.read_json("docsweep-report/report.json");
    let lines = audit_lines(&w, "docsweep-audit.jsonl");
    assert_eq!(lines.len(), 1);
    let a = &lines[0];
    assert_eq!(a["event"], "check");
    assert_eq!(a["status"], "findings");
    assert!(a["actor"].as_str().unwrap().starts_with("tester"), "{a}");
    assert_eq!(a["source"], report["source"]);
    assert_eq!(a["at"], report["finished_at"]);
    assert_eq!(a["started_at"], report["started_at"]);
    let orders = collection(&report, "orders");
    let counts = &a["counts"]["orders"];
    assert_eq!(counts["documents"], orders["documents"]);
    assert_eq!(counts["valid"], orders["classes"]["valid"]);
    assert_eq!(counts["invalid"], orders["classes"]["invalid"]);
    assert_eq!(counts["unreadable"], orders["unreadable"]);
    assert!(counts["orphans"].as_u64().unwrap() > 0);
    assert!(a["counts"]["customers"]["duplicates"].as_u64().unwrap() > 0);
    assert!(a.get("verdict").is_none(), "no thresholds: no verdict");

    // Thresholds: a verdict per collection; --audit and `audit =` choose the file.
    let run = check(
        &w,
        &[
            "--warn-on",
            "invalid=1",
            "--fail-on",
            "invalid=100%",
            "--audit",
            "other.jsonl",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let a = audit_lines(&w, "other.jsonl").pop().unwrap();
    assert_eq!(
        a["verdict"]["orders"], "fail",
        "other checks still fail: {a}"
    );
    assert_eq!(audit_lines(&w, "docsweep-audit.jsonl").len(), 1);
    config(&w, "audit = \"logs/audit.jsonl\"\n");
    std::fs::create_dir(w.path().join("logs")).unwrap();
    let run = check(&w, &[], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(audit_lines(&w, "logs/audit.jsonl")[0]["status"], "findings");
    assert_eq!(audit_lines(&w, "docsweep-audit.jsonl").len(), 1);
}

#[test]
fn the_audit_command_prints_the_timeline() {
    let w = Workdir::new();
    assert_eq!(check(&w, &["--actor", "ana@ci"], &[]).code, 1);
    // An apply line as `repair apply` writes it, and a line that is not JSON.
    let mut log = w.read("docsweep-audit.jsonl");
    log.push_str(
        "{\"event\":\"apply\",\"at\":\"2099-01-01T00:00:00Z\",\"actor\":\"bo@ops\",\"collection\":\"orders\",\"applied\":3,\"already\":0,\"conflicts\":0}\nnot json\n",
    );
    std::fs::write(w.path().join("docsweep-audit.jsonl"), log).unwrap();

    let run = w.docsweep(&["audit"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("TIME") && lines[0].contains("STATUS / COUNTS"));
    assert!(
        lines[1].contains("check")
            && lines[1].contains("ana@ci")
            && lines[1].contains("customers,orders")
            && lines[1].ends_with("findings"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("apply") && lines[2].ends_with("applied 3, already 0, conflicts 0"),
        "{}",
        lines[2]
    );
    assert!(run.stderr.contains("1 line(s)"), "{}", run.stderr);

    let run = w.docsweep(&["audit", "--since", "2098-12-31", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let selected: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0]["event"], "apply");
    let run = w.docsweep(&["audit", "--collection", "customers"]);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert_eq!(w.docsweep(&["audit", "--since", "soon"]).code, 2);
    assert_eq!(w.docsweep(&["audit", "--audit", "none.jsonl"]).code, 2);
}

#[test]
fn the_timeline_has_the_check_the_repair_its_undo_and_the_check_after() {
    let w = Workdir::new();
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("dump"));
    let schemas = example().join("schemas");
    let schemas = schemas.to_str().unwrap();
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    config(
        &w,
        "[thresholds]\ninvalid = { warn = 1, fail = \"5%\" }\n\"other_version:2\" = { warn = 1, fail = 1000 }\n",
    );
    let sweep = |source: &str| {
        let run = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            source,
            "--baseline",
            &baseline,
            "--schemas",
            schemas,
            "--actor",
            "night@ci",
        ]);
        assert_eq!(run.code, 1, "{}", run.stderr);
    };
    sweep("dump:dump");
    let ok = |args: &[&str]| {
        let run = w.docsweep(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    };
    ok(&[
        "repair",
        "plan",
        "--template",
        "restore-missing",
        "--baseline",
        &baseline,
        "--collection",
        "orders",
        "--source",
        "dump:dump",
        "--schemas",
        schemas,
        "--out",
        "p.plan",
    ]);
    ok(&[
        "repair",
        "apply",
        "p.plan",
        "--out",
        "dump:fixed",
        "--actor",
        "ana@ops",
    ]);
    ok(&[
        "repair",
        "undo",
        "fixed/shop/.docsweep/journal",
        "--out",
        "dump:undone",
    ]);
    sweep("dump:fixed");
    // A failed sweep: its line masks the password.
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "mongodb://app:s3cret@127.0.0.1:9/shop",
        "--connect-timeout",
        "1",
        "--schemas",
        schemas,
        "--report-dir",
        "failed",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);

    let lines = audit_lines(&w, "docsweep-audit.jsonl");
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["check", "apply", "undo", "check", "check"]);
    let (first, last) = (&lines[0], &lines[3]);
    let report = w.read_json("docsweep-report/report.json");
    // who, when (started and finished), the source, the status and verdict, the counts
    assert!(first["actor"].as_str().unwrap().starts_with("night@ci"));
    assert_eq!(last["started_at"], report["started_at"]);
    assert_eq!(last["finished_at"], report["finished_at"]);
    assert_eq!(last["at"], report["finished_at"]);
    assert_eq!(last["source"], report["source"]);
    assert_eq!(last["database"], "shop");
    assert_eq!(last["baseline"], report["baseline"]);
    assert_eq!(last["status"], report["status"]);
    let orders = collection(&report, "orders");
    assert_eq!(last["gate"]["orders"], orders["verdict"]);
    assert_eq!(last["verdict"]["orders"], "fail");
    assert_eq!(
        last["counts"]["orders"]["other_versions"],
        orders["classes"]["other_version"]
    );
    assert_eq!(
        last["counts"]["orders"]["missing"],
        orders["reconciliation"]["missing"]
    );
    assert_eq!(last["since_previous"]["orders"], orders["since_previous"]);
    let failed = &lines[4];
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("cannot connect"));
    assert!(!w.read("docsweep-audit.jsonl").contains("s3cret"));
    assert!(failed["source"].as_str().unwrap().contains("app:****@"));

    // The table: every event, the undo under the collection of the apply it reverts.
    let run = w.docsweep(&["audit"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(rows.len(), 6, "{}", run.stdout);
    let applied = lines[1]["applied"].as_u64().unwrap();
    let missing_before = first["counts"]["orders"]["missing"].as_u64().unwrap();
    let missing_after = last["counts"]["orders"]["missing"].as_u64().unwrap();
    assert_eq!(missing_after, missing_before - applied, "the repair shows");
    assert!(
        rows[1].contains("night@ci") && rows[1].contains("findings; gate: customers "),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].contains("ana@ops")
            && rows[2].contains("orders")
            && rows[2].ends_with(&format!(
                "restore-missing: applied {applied}, already 0, conflicts 0"
            )),
        "{}",
        rows[2]
    );
    assert!(
        rows[3].contains("undo") && rows[3].contains(" orders ") && rows[3].contains("undone"),
        "{}",
        rows[3]
    );
    let total = |field: &str| -> u64 {
        last["since_previous"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|c| c["checks"].as_array().unwrap())
            .map(|ch| ch[field].as_u64().unwrap())
            .sum()
    };
    assert!(
        total("resolved") >= applied,
        "the restored documents are resolved"
    );
    assert!(
        rows[4].contains(&format!(
            "since last: +{} new, -{} resolved",
            total("new"),
            total("resolved")
        )),
        "{}",
        rows[4]
    );

    // Filters: event, collection (the undo too), until.
    let run = w.docsweep(&[
        "audit",
        "--event",
        "undo",
        "--collection",
        "orders",
        "--json",
    ]);
    let picked: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(picked.len(), 1, "{}", run.stdout);
    assert_eq!(picked[0]["event"], "undo");
    let run = w.docsweep(&["audit", "--event", "check", "--collection", "customers"]);
    // The header and the two sweeps that read customers (the failed one read nothing).
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("gate: customers fail") && !run.stdout.contains("orders fail"),
        "only customers' verdict: {}",
        run.stdout
    );
    let until = lines[0]["at"].as_str().unwrap();
    let run = w.docsweep(&["audit", "--until", until, "--json"]);
    assert_eq!(
        run.stdout.lines().count(),
        0,
        "before the first line: {}",
        run.stdout
    );
    let run = w.docsweep(&["audit", "--until", "2999-01-01", "--since", "2000-01-01"]);
    assert_eq!(run.stdout.lines().count(), 6);
    assert_eq!(w.docsweep(&["audit", "--event", "plan"]).code, 2);
    assert_eq!(w.docsweep(&["audit", "--until", "later"]).code, 2);
}
