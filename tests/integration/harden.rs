//! Hardening: plan integrity, the actor in the audit log, closed stdout and stderr,
//! owner-only files, leftover temporary files, and outputs inside inputs.

use crate::util::{example, Workdir};

fn dump() -> String {
    format!("dump:{}", example().join("data/dump").display())
}

fn schemas() -> String {
    example().join("schemas").display().to_string()
}

/// `repair plan` of the example's 40 reverts into `out`.
fn make_plan(w: &Workdir, out: &str) {
    let (d, s) = (dump(), schemas());
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--schemas",
        &s,
        "--template",
        "revert-nested-reference",
        "--template",
        "units-from-cents",
        "--collection",
        "orders",
        "--source",
        &d,
        "--out",
        out,
    ]);
    assert_eq!(run.code, 0, "a written plan exits 0: {}", run.stderr);
}

#[test]
fn a_plan_with_one_entry_removed_and_another_repeated_is_refused() {
    let w = Workdir::new();
    make_plan(&w, "p.plan");
    let text = w.read("p.plan");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.len() > 4, "{text}");
    // Entry 2 removed, entry 1 repeated: the summary's count still matches.
    let mut tampered: Vec<&str> = vec![lines[0], lines[1], lines[1]];
    tampered.extend_from_slice(&lines[3..]);
    assert_eq!(tampered.len(), lines.len());
    std::fs::write(w.path().join("tampered.plan"), tampered.concat()).unwrap();
    let run = w.docsweep(&[
        "repair",
        "apply",
        "tampered.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("tampered.plan") && run.stderr.contains("line 3"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(!w.path().join("fixed").exists());
    assert!(!w.path().join("audit.jsonl").exists());
    assert!(lines[0].contains("\"docsweep-plan/2\""), "{}", lines[0]);
}

/// Runs `docsweep ARGS` in `w` with `env` set and `$USER` and `$DOCSWEEP_ACTOR` unset.
fn run_env(w: &Workdir, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"));
    cmd.args(args)
        .current_dir(w.path())
        .env_remove("USER")
        .env_remove("DOCSWEEP_ACTOR")
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run docsweep");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (o.status.code().unwrap_or(-1), stderr)
}

fn audit_lines(w: &Workdir) -> Vec<serde_json::Value> {
    w.read("audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_audit_log_names_the_actor_without_user_set() {
    let w = Workdir::new();
    make_plan(&w, "p.plan");
    let apply = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["repair", "apply", "p.plan", "--out", out];
        args.extend_from_slice(&["--audit", "audit.jsonl"]);
        args.extend_from_slice(extra);
        let (code, stderr) = run_env(&w, &args, env);
        assert_eq!(code, 0, "{stderr}");
    };
    // No $USER, as in a pod or a CronJob.
    apply("dump:a", &[], &[]);
    let a = &audit_lines(&w)[0];
    assert_eq!(a["event"], "apply", "{a}");
    let actor = a["actor"].as_str().unwrap_or_default();
    assert!(!actor.is_empty() && !actor.starts_with('@'), "{a}");
    assert_eq!(a["user"], a["actor"], "{a}");
    // The journal's header records it too.
    let journal = w.read("a/shop/.docsweep/journal");
    let header: serde_json::Value =
        serde_json::from_str(journal.lines().next().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(header["user"], a["actor"], "{header}");

    apply(
        "dump:b",
        &["--actor", "alice"],
        &[("DOCSWEEP_ACTOR", "bob")],
    );
    apply(
        "dump:c",
        &[],
        &[("DOCSWEEP_ACTOR", "bob"), ("USER", "carol")],
    );
    apply("dump:d", &[], &[("USER", "carol")]);
    apply("dump:e", &["--actor", "ci@deploy"], &[]);
    let lines = audit_lines(&w);
    let who: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["actor"].as_str().unwrap_or_default())
        .collect();
    assert!(who[0].starts_with("alice@"), "{who:?}");
    assert!(who[1].starts_with("bob@"), "{who:?}");
    assert!(who[2].starts_with("carol@"), "{who:?}");
    assert_eq!(who[3], "ci@deploy");

    let (code, stderr) = run_env(
        &w,
        &[
            "repair",
            "undo",
            "b/shop/.docsweep/journal",
            "--out",
            "dump:u",
            "--audit",
            "audit.jsonl",
        ],
        &[("DOCSWEEP_ACTOR", "dave")],
    );
    assert_eq!(code, 0, "{stderr}");
    let undo = audit_lines(&w).pop().unwrap();
    assert_eq!(undo["event"], "undo", "{undo}");
    assert!(
        undo["actor"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dave@"),
        "{undo}"
    );
}

/// Which of the child's streams is a pipe whose reading end is closed before it starts.
#[derive(Debug, Clone, Copy)]
enum Closed {
    Stdout,
    Stderr,
    /// One closed pipe for both (`2>&1 | head -0`).
    Both,
}

/// Runs `docsweep ARGS` with `closed` streams; the exit code and what the open stream got.
fn run_closed(w: &Workdir, args: &[&str], closed: Closed) -> (i32, String) {
    use std::process::Stdio;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"));
    cmd.args(args)
        .current_dir(w.path())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    match closed {
        Closed::Stdout => cmd.stdout(writer).stderr(Stdio::piped()),
        Closed::Stderr => cmd.stdout(Stdio::piped()).stderr(writer),
        Closed::Both => cmd.stdout(writer.try_clone().unwrap()).stderr(writer),
    };
    let o = cmd.output().unwrap();
    let open = String::from_utf8_lossy(match closed {
        Closed::Stdout => &o.stderr,
        _ => &o.stdout,
    })
    .into_owned();
    (o.status.code().unwrap_or(-1), open)
}

#[test]
fn commands_stop_quietly_on_a_closed_stdout_or_stderr() {
    let w = Workdir::new();
    let (d, s) = (dump(), schemas());
    let check = [
        "check",
        "--no-progress",
        "--source",
        &d,
        "--schemas",
        &s,
        "--collection",
        "customers",
        "--report-dir",
        "r",
    ];
    let plan = [
        "repair",
        "plan",
        "--schemas",
        &s,
        "--template",
        "revert-nested-reference",
        "--template",
        "units-from-cents",
        "--collection",
        "orders",
        "--source",
        &d,
        "--out",
        "p.plan",
    ];
    let list = ["templates", "list"];
    // An error goes to stderr.
    let unknown = [
        "repair",
        "plan",
        "--template",
        "no-such",
        "--source",
        &d,
        "--out",
        "x.plan",
    ];
    // (arguments, the exit code the command has with open streams)
    let commands: [(&[&str], i32); 4] = [(&check, 1), (&plan, 0), (&list, 0), (&unknown, 2)];
    for (args, code) in commands {
        for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
            for i in 0..20 {
                let (got, open) = run_closed(&w, args, closed);
                assert!(
                    !open.contains("panicked"),
                    "{args:?} {closed:?} #{i}: {open}"
                );
                assert_eq!(
                    got, code,
                    "{args:?} with {closed:?} closed, run {i}: the outcome's exit code, never 101 (a panic): {open}"
                );
            }
        }
        // The work is done all the same.
        if args[0] == "check" {
            assert!(w.path().join("r/report.json").is_file());
        }
    }
    assert!(w.path().join("p.plan").is_file());
}

#[cfg(unix)]
/// Runs `docsweep ARGS` in `w` under `umask`.
fn run_umask(w: &Workdir, umask: &str, args: &[&str]) -> (i32, String) {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_docsweep"))
        .args(args)
        .current_dir(w.path())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (o.status.code().unwrap_or(-1), stderr)
}

#[cfg(unix)]
fn mode(w: &Workdir, rel: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(w.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    m.permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn files_with_document_data_are_the_owners_only_whatever_the_umask() {
    let b = format!("dump:{}", example().join("data/baseline").display());
    for umask in ["022", "000"] {
        let w = Workdir::new();
        let (d, s) = (dump(), schemas());
        let (code, err) = run_umask(
            &w,
            umask,
            &[
                "repair",
                "plan",
                "--schemas",
                &s,
                "--template",
                "revert-nested-reference",
                "--template",
                "units-from-cents",
                "--collection",
                "orders",
                "--source",
                &d,
                "--out",
                "p.plan",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (code, err) = run_umask(
            &w,
            umask,
            &[
                "repair",
                "apply",
                "p.plan",
                "--out",
                "dump:fixed",
                "--audit",
                "a.jsonl",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (code, err) = run_umask(
            &w,
            umask,
            &["snapshot", "--source", &b, "--out", "full.snap", "--full"],
        );
        assert_eq!(code, 0, "{err}");
        let (code, err) = run_umask(
            &w,
            umask,
            &[
                "check",
                "--no-progress",
                "--source",
                &d,
                "--schemas",
                &s,
                "--report-dir",
                "reports/nightly",
                "--show-values",
                "--metrics",
                "docsweep.prom",
            ],
        );
        assert_eq!(code, 1, "{err}");
        for (file, want) in [
            ("p.plan", 0o600),
            ("fixed/shop/.docsweep/journal", 0o600),
            ("full.snap", 0o600),
            ("reports/nightly", 0o700),
            ("reports/nightly/report.json", 0o600),
            ("reports/nightly/violations.csv", 0o600),
        ] {
            assert_eq!(mode(&w, file), want, "umask {umask}: {file}");
        }
        // Counts only: as the umask says, for a node-exporter running as another user.
        let shared = if umask == "022" { 0o644 } else { 0o666 };
        assert_eq!(mode(&w, "docsweep.prom"), shared, "umask {umask}");
    }
}

#[test]
fn leftovers_of_a_killed_check_are_removed_by_the_next_run_and_runs_do_not_share_a_dir() {
    let w = Workdir::new();
    let (d, s) = (dump(), schemas());
    let check = [
        "check",
        "--no-progress",
        "--source",
        &d,
        "--schemas",
        &s,
        "--collection",
        "customers",
        "--report-dir",
        "r",
    ];
    assert_eq!(w.docsweep(&check).code, 1);
    // What a kill -9 during a check leaves (pid 1 runs: process ids do not tell).
    let leftovers = [
        ".violations.csv.tmp-999999",
        ".report.json.tmp-1",
        ".partial.dsw.tmp-4242",
    ];
    for f in leftovers {
        std::fs::write(w.path().join("r").join(f), "half").unwrap();
    }
    std::fs::write(w.path().join("r/notes.tmp-1"), "mine").unwrap();
    assert_eq!(w.docsweep(&check).code, 1);
    for f in leftovers {
        assert!(!w.path().join("r").join(f).exists(), "{f} is left");
    }
    assert!(w.path().join("r/notes.tmp-1").exists(), "not docsweep's");
    assert!(w.path().join("r/report.json").is_file());

    // While a run holds the directory, another one is refused and changes nothing there.
    let lock = std::fs::File::options()
        .write(true)
        .open(w.path().join("r/.docsweep.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let before = w.read("r/report.json");
    std::fs::write(w.path().join("r/.report.json.tmp-777"), "theirs").unwrap();
    let run = w.docsweep(&check);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("another docsweep run") && run.stderr.contains(".docsweep.lock"),
        "{}",
        run.stderr
    );
    assert!(w.path().join("r/.report.json.tmp-777").exists());
    assert_eq!(w.read("r/report.json"), before);
    drop(lock);
    assert_eq!(w.docsweep(&check).code, 1);
    assert!(!w.path().join("r/.report.json.tmp-777").exists());
}

/// The report directory is replaced as a whole or not at all: a run killed while it writes
/// its reports (before report.json, or with every file written but not yet in place)
/// leaves the previous report complete and as it was, and the next run cleans up after it.
#[cfg(unix)]
#[test]
fn a_check_killed_while_writing_its_reports_leaves_the_previous_report_whole() {
    let w = Workdir::new();
    let (d, s) = (dump(), schemas());
    let base = [
        "check",
        "--no-progress",
        "--source",
        &d,
        "--schemas",
        &s,
        "--report-dir",
        "r",
    ];
    let only_customers = [&base[..], &["--collection", "customers"]].concat();
    assert_eq!(w.docsweep(&only_customers).code, 1);
    std::fs::write(w.path().join("r/notes.txt"), "mine").unwrap();
    let before = tree(&w.path().join("r"));
    assert!(before.iter().any(|(p, _)| p.ends_with("report.json")));
    // A different report: every collection, and an HTML page in the report directory.
    let all = [&base[..], &["--html", "r/report.html"]].concat();
    for point in ["check.before-report-json", "check.before-swap"] {
        let (code, stderr) = run_env(&w, &all, &[("DOCSWEEP_FAILPOINT", point)]);
        assert!(
            ![0, 1, 2, 3].contains(&code),
            "{point}: not killed: {stderr}"
        );
        assert_eq!(
            tree(&w.path().join("r")),
            before,
            "{point}: the report changed"
        );
        let r = w.read_json("r/report.json");
        assert_eq!(r["collections"].as_array().unwrap().len(), 1, "{point}");
    }
    // The killed runs' staging directories are there until the next run removes them.
    let staged = |w: &Workdir| {
        std::fs::read_dir(w.path())
            .unwrap()
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".r.tmp-"))
            .count()
    };
    assert!(staged(&w) > 0);
    let run = w.docsweep(&all);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(staged(&w), 0, "staging directories left");
    let r = w.read_json("r/report.json");
    assert_eq!(r["collections"].as_array().unwrap().len(), 2);
    let csv = w.read("r/violations.csv");
    assert!(csv.lines().any(|l| l.starts_with("orders,")), "{csv}");
    assert!(w.path().join("r/report.html").is_file());
    // What was there and is not a report stays, the same file.
    assert_eq!(w.read("r/notes.txt"), "mine");
    assert!(w.path().join("r/.docsweep.lock").is_file());
    // Since the previous run: it compared with the report it replaced.
    let customers = crate::util::collection(&r, "customers");
    assert!(customers["since_previous"].is_object(), "{customers}");
}

#[cfg(unix)]
/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
#[test]
fn apply_refuses_an_output_inside_its_source_or_around_it() {
    let w = Workdir::new();
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("data/src"));
    std::os::unix::fs::symlink(w.path().join("data/src"), w.path().join("alias")).unwrap();
    let s = schemas();
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--schemas",
        &s,
        "--template",
        "revert-nested-reference",
        "--template",
        "units-from-cents",
        "--collection",
        "orders",
        "--source",
        "dump:data/src",
        "--out",
        "p.plan",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = tree(&w.path().join("data"));
    for (out, why) in [
        ("dump:data/src/shop", "inside"),
        ("dump:data/src/fixed", "inside"),
        ("dump:alias/shop/new/../fixed", "inside"),
        ("dump:data/../data/src/shop/x", "inside"),
        ("dump:data", "contains"),
        ("dump:.", "contains"),
    ] {
        let run = w.docsweep(&[
            "repair", "apply", "p.plan", "--out", out, "--audit", "a.jsonl",
        ]);
        assert_eq!(run.code, 2, "{out}: {}", run.stderr);
        assert!(
            run.stderr.contains(why) && run.stderr.contains(&out["dump:".len()..]),
            "{out}: {}",
            run.stderr
        );
        assert_eq!(
            tree(&w.path().join("data")),
            before,
            "{out} changed the source"
        );
        assert!(!w.path().join("shop").exists(), "{out}");
    }
    // Beside it is fine.
    let run = w.docsweep(&[
        "repair",
        "apply",
        "p.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(tree(&w.path().join("data")), before);
}
