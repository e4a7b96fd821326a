//! Test helpers: a scratch working directory and a runner for the real executable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example() -> PathBuf {
    repo().join("examples/shop")
}

/// The `gen_shop` example binary. `cargo test` builds examples as test targets only, so
/// the plain binary is built here once when it is missing.
pub fn generator() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = PathBuf::from(env!("CARGO_BIN_EXE_docsweep"));
            let dir = exe.parent().unwrap_or(Path::new("."));
            let path = dir
                .join("examples")
                .join(format!("gen_shop{}", std::env::consts::EXE_SUFFIX));
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "--example",
                "gen_shop",
                "--manifest-path",
            ])
            .arg(repo().join("Cargo.toml"));
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build --example gen_shop");
            assert!(status.success(), "cargo build --example gen_shop failed");
            assert!(path.is_file(), "{} was not built", path.display());
            path
        })
        .clone()
}

/// A temporary working directory.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

/// The result of one run of the executable.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `docsweep ARGS` in this directory.
    pub fn docsweep(&self, args: &[&str]) -> Run {
        let o = Command::new(env!("CARGO_BIN_EXE_docsweep"))
            .args(args)
            .current_dir(self.path())
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run docsweep");
        let run = Run::from(o);
        assert!(
            !run.stderr.contains("panicked"),
            "docsweep panicked: {}",
            run.stderr
        );
        run
    }

    /// Runs the generator into `out` (relative to this directory).
    pub fn generate(&self, out: &str, extra: &[&str]) {
        let mut args = vec!["--out", out];
        args.extend_from_slice(extra);
        let o = Command::new(generator())
            .args(&args)
            .current_dir(self.path())
            .output()
            .expect("run gen_shop");
        assert!(
            o.status.success(),
            "gen_shop failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn read_json(&self, rel: &str) -> Value {
        let text =
            std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The collection `name` of a report.
pub fn collection<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["collections"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no collection {name} in report"))
}

/// The live test server, or None when running outside CI without one. In CI (CI=true)
/// a missing server is a failure, never a skip.
pub fn server() -> Option<String> {
    match std::env::var("DOCSWEEP_TEST_MONGODB_URI") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "DOCSWEEP_TEST_MONGODB_URI is not set: run the tests through scripts/test"
            );
            eprintln!("DOCSWEEP_TEST_MONGODB_URI not set: live test not run (use scripts/test)");
            None
        }
    }
}

static DB_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh database name for one test.
pub fn fresh_db(tag: &str) -> String {
    let n = DB_COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("docsweep_{tag}_{}_{n}", std::process::id())
}

/// `uri` with its path replaced by `db`.
pub fn with_db(uri: &str, db: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("mongodb", uri));
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[host_end..]
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{}/{db}{query}", &rest[..host_end])
}

/// Takes out of a report what compares it with the run its report directory held before
/// (`since_previous`, and the warnings about that previous report): the history, not this
/// run's result.
pub fn without_history(r: &mut Value) {
    for c in r["collections"].as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut() {
            c.remove("since_previous");
        }
    }
    if let Some(o) = r.as_object_mut() {
        if let Some(Value::Array(w)) = o.get_mut("warnings") {
            w.retain(|w| !w.as_str().is_some_and(|w| w.starts_with("previous ")));
            if w.is_empty() {
                o.remove("warnings");
            }
        }
    }
}
