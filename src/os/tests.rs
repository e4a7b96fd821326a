//! Tests of the file-system and process helpers: atomic files, permissions, locks.

use super::*;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn the_actor_is_the_first_of_flag_or_env_user_and_uid_name_at_the_host() {
    let uid = || "uid:1000650000".to_string();
    assert_eq!(
        actor_from(s("alice"), s("bob"), uid, s("pod-1")),
        "alice@pod-1"
    );
    assert_eq!(actor_from(None, s("bob"), uid, s("pod-1")), "bob@pod-1");
    assert_eq!(
        actor_from(s(""), s(" "), uid, s("pod-1")),
        "uid:1000650000@pod-1"
    );
    assert_eq!(actor_from(None, None, uid, None), "uid:1000650000");
    assert_eq!(
        actor_from(s("ci@deploy"), s("bob"), uid, s("pod-1")),
        "ci@deploy"
    );
}

#[test]
fn the_uid_has_a_name_or_a_number() {
    let n = uid_name();
    assert!(!n.is_empty());
    assert!(!actor().is_empty());
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn private_files_and_folders_are_the_owners_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a").join("b");
    create_dir_all(&p, Access::Private).unwrap();
    assert_eq!(mode(&p), 0o700);
    let f = p.join("plan");
    std::fs::write(&f, "old").unwrap();
    // Replacing a world-readable file gives a private one.
    write_atomic(&f, b"new", Access::Private).unwrap();
    assert_eq!(mode(&f), 0o600);
    assert_eq!(std::fs::read(&f).unwrap(), b"new");
    let j = p.join("journal");
    create_new(&j, Access::Private).unwrap();
    assert_eq!(mode(&j), 0o600);
    assert!(create_new(&j, Access::Private).is_err());
    let q = p.join("q.jsonl");
    writeln!(open_append(&q, Access::Private).unwrap(), "{{}}").unwrap();
    writeln!(open_append(&q, Access::Private).unwrap(), "{{}}").unwrap();
    assert_eq!(mode(&q), 0o600);
    assert_eq!(std::fs::read_to_string(&q).unwrap(), "{}\n{}\n");
    // Nothing temporary is left.
    let names: Vec<String> = std::fs::read_dir(&p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(TEMP_MARK)), "{names:?}");
}

#[test]
fn temporary_names_and_their_process_ids() {
    assert_eq!(temp_pid(".violations.csv.tmp-4242"), Some(4242));
    assert_eq!(temp_pid(".report.json.tmp-1"), Some(1));
    for not in [
        "violations.csv.tmp-1",
        "..tmp-1",
        ".x.tmp-",
        ".x.tmp-12a",
        ".x.tmp--1",
        ".x.tmp",
    ] {
        assert_eq!(temp_pid(not), None, "{not}");
    }
    let p = Path::new("dir/report.json");
    let tmp = temp_path(p);
    let name = tmp.file_name().unwrap().to_str().unwrap();
    assert_eq!(temp_pid(name), Some(std::process::id()));
    assert!(pid_alive(std::process::id()));
}

#[cfg(unix)]
#[test]
fn a_dead_writers_temporary_file_goes_with_the_next_write_of_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.plan");
    // A process id that no process has: beyond pid_max.
    let dead = dir.path().join(".p.plan.tmp-2147483000");
    let alive = dir.path().join(".p.plan.tmp-1");
    let other = dir.path().join(".q.plan.tmp-2147483000");
    for f in [&dead, &alive, &other] {
        std::fs::write(f, "x").unwrap();
    }
    write_atomic(&p, b"plan", Access::Private).unwrap();
    assert!(!dead.exists());
    assert!(alive.exists(), "pid 1 runs: maybe it is writing");
    assert!(other.exists(), "another file's");
}

#[test]
fn a_locked_folder_is_refused_and_its_leftovers_removed_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in [
        ".violations.csv.tmp-1",
        ".report.json.tmp-99999",
        "keep.csv",
        ".keep",
    ] {
        std::fs::write(d.join(f), "x").unwrap();
    }
    let (lock, removed) = DirLock::acquire(d).unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(d.join("keep.csv").exists() && d.join(".keep").exists());
    assert!(!d.join(".violations.csv.tmp-1").exists());
    let busy = DirLock::acquire(d).unwrap_err();
    assert!(matches!(busy, LockError::Busy { .. }), "{busy}");
    drop(lock);
    DirLock::acquire(d).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_staged_folder_replaces_the_folder_whole_and_keeps_what_it_does_not_write() {
    use std::os::unix::fs::MetadataExt;
    let top = tempfile::tempdir().unwrap();
    let d = top.path().join("r");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("report.json"), "old").unwrap();
    std::fs::write(d.join("mine.txt"), "mine").unwrap();
    let (lock, _) = DirLock::acquire(&d).unwrap();
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let lock_ino = ino(&d.join(".docsweep.lock"));
    // Dropped without a commit: nothing changes, nothing is left.
    let st = StagedDir::create(&d).unwrap();
    std::fs::write(st.path().join("report.json"), "half").unwrap();
    assert!(st.path().starts_with(top.path()) && !st.path().starts_with(&d));
    drop(st);
    assert_eq!(
        std::fs::read_to_string(d.join("report.json")).unwrap(),
        "old"
    );
    assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 1);
    // Committed: the new report, the user's file and the very same lock file.
    let st = StagedDir::create(&d).unwrap();
    std::fs::write(st.path().join("report.json"), "new").unwrap();
    assert_eq!(st.staged(&d.join("x.html")), Some(st.path().join("x.html")));
    assert_eq!(st.staged(&top.path().join("x.html")), None);
    st.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("report.json")).unwrap(),
        "new"
    );
    assert_eq!(std::fs::read_to_string(d.join("mine.txt")).unwrap(), "mine");
    assert_eq!(ino(&d.join(".docsweep.lock")), lock_ino);
    assert_eq!(std::fs::read_dir(top.path()).unwrap().count(), 1);
    assert!(matches!(DirLock::acquire(&d), Err(LockError::Busy { .. })));
    drop(lock);
    // A folder with sub-folders is not swapped: its files are renamed in one by one.
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/keep"), "k").unwrap();
    let st = StagedDir::create(&d).unwrap();
    assert!(st.path().starts_with(&d));
    std::fs::write(st.path().join("report.json"), "newer").unwrap();
    st.commit().unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("report.json")).unwrap(),
        "newer"
    );
    assert_eq!(std::fs::read_to_string(d.join("sub/keep")).unwrap(), "k");
    assert!(!d.join(INNER_STAGE).exists());
}

#[cfg(unix)]
#[test]
fn paths_resolve_through_links_and_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(d.join("dump/shop")).unwrap();
    std::os::unix::fs::symlink(d.join("dump"), d.join("link")).unwrap();
    assert_eq!(resolve(&d.join("link/shop")).unwrap(), d.join("dump/shop"));
    assert_eq!(
        resolve(&d.join("link/shop/new/sub")).unwrap(),
        d.join("dump/shop/new/sub")
    );
    assert_eq!(
        resolve(&d.join("new/../link/shop/x")).unwrap(),
        d.join("dump/shop/x")
    );
    assert_eq!(resolve(&d.join("dump/shop/..")).unwrap(), d.join("dump"));
}

#[test]
fn an_uncommitted_atomic_file_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    let mut f = AtomicFile::create(&p, Access::Shared).unwrap();
    f.write_all(b"half").unwrap();
    assert!(temp_path(&p).exists());
    drop(f);
    assert!(!temp_path(&p).exists() && !p.exists());
}
