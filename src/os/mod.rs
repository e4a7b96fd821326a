//! What docsweep asks of the operating system, in one place: who is running it (the
//! `actor` of the audit log and the journal), and files written safely: owner-only where
//! they hold document data, and atomically (a temporary name in the same directory,
//! fsynced, renamed into place).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The actor given with `--actor`, when it was.
static GIVEN: OnceLock<String> = OnceLock::new();

/// Sets the actor from `--actor` (before the first call of [`actor`]; a later call has no
/// effect on what was already recorded).
pub fn set_actor(name: &str) {
    let _ = GIVEN.set(name.to_string());
}

/// Who runs this process, for the audit log and the journal: `--actor`, else
/// `$DOCSWEEP_ACTOR`, else `$USER`, else the name of the process's uid (`uid:N` when it has
/// none, as for an arbitrary uid in a container), followed by `@host`. An actor given with
/// `--actor` or `DOCSWEEP_ACTOR` that already holds an `@` is taken as it is.
pub fn actor() -> String {
    static ACTOR: OnceLock<String> = OnceLock::new();
    ACTOR
        .get_or_init(|| {
            let given = GIVEN
                .get()
                .cloned()
                .or_else(|| std::env::var("DOCSWEEP_ACTOR").ok());
            actor_from(given, std::env::var("USER").ok(), uid_name, hostname())
        })
        .clone()
}

/// [`actor`] from its parts (empty values count as absent).
fn actor_from(
    given: Option<String>,
    user: Option<String>,
    uid_name: impl FnOnce() -> String,
    host: Option<String>,
) -> String {
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let given = nonempty(given);
    if let Some(g) = given.as_ref().filter(|g| g.contains('@')) {
        return g.clone();
    }
    let who = given.or_else(|| nonempty(user)).unwrap_or_else(uid_name);
    match nonempty(host) {
        Some(h) => format!("{who}@{h}"),
        None => who,
    }
}

/// The host's name: `/proc/sys/kernel/hostname`, else `$HOSTNAME`.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// The user name of the process's uid from the user database, or `uid:N`.
#[cfg(unix)]
fn uid_name() -> String {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids); it is only read
        // after getpwuid_r filled it in.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, `buf` for `buf.len()` bytes.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            // SAFETY: getpwuid_r succeeded: pw_name points to a NUL-terminated string in `buf`.
            let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
            let name = name.to_string_lossy().trim().to_string();
            if !name.is_empty() {
                return name;
            }
        }
        return format!("uid:{uid}");
    }
}

#[cfg(not(unix))]
fn uid_name() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "unknown".into())
}

/// Who may read a file docsweep writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The owner only, whatever the umask: files 0600, folders 0700. For every file that
    /// holds document data (values or `_id`s): plans, journals, snapshots, quarantine
    /// files, reports.
    Private,
    /// As the umask says (files 0666 and folders 0777 less the umask): files without
    /// document data (contracts, metrics).
    Shared,
}

impl Access {
    #[cfg(unix)]
    fn file_mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Shared => 0o666,
        }
    }
}

/// Options that create a file with `access`. The mode is given at creation, so a private
/// file is never readable by others, not even for an instant.
pub fn open_options(access: Access) -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, access.file_mode());
    #[cfg(not(unix))]
    let _ = access;
    o
}

/// Makes a private file 0600 exactly: the mode given at creation lost whatever bits the
/// umask holds.
fn restrict(file: &File, access: Access) -> std::io::Result<()> {
    #[cfg(unix)]
    if access == Access::Private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = (file, access);
    Ok(())
}

/// Creates a new file with `access`; fails if it exists.
pub fn create_new(path: &Path, access: Access) -> std::io::Result<File> {
    let f = open_options(access)
        .write(true)
        .create_new(true)
        .open(path)?;
    restrict(&f, access)?;
    Ok(f)
}

/// Creates (or truncates) a file with `access`. An existing file is replaced by a new one,
/// so that it gets `access` too.
pub fn create(path: &Path, access: Access) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create_new(path, access)
}

/// Opens a file for appending, creating it with `access` when it does not exist.
pub fn open_append(path: &Path, access: Access) -> std::io::Result<File> {
    let f = open_options(access).create(true).append(true).open(path)?;
    if f.metadata()?.len() == 0 {
        restrict(&f, access)?;
    }
    Ok(f)
}

/// Creates a folder and its missing parents; a private folder that did not exist is made
/// 0700 exactly. An existing folder is left as it is.
pub fn create_dir_all(path: &Path, access: Access) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if access == Access::Private {
            b.mode(0o700);
        }
        b.create(path)?;
        if access == Access::Private {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = access;
        b.create(path)?;
    }
    Ok(())
}

/// `path` made absolute with symbolic links and `..` resolved, also when it does not exist
/// (yet): its nearest existing ancestor is resolved by the system and the missing rest
/// appended (a `..` there undoing the name before it, as creating the folders would).
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let mut current = std::path::absolute(path)?;
    // Each round resolves more of the path once the rest is known; a few are plenty.
    for _ in 0..8 {
        let mut existing = current.as_path();
        let mut rest = Vec::new();
        let base = loop {
            match existing.canonicalize() {
                Ok(c) => break c,
                Err(_) => {
                    let Some(last) = existing.components().next_back() else {
                        return Err(std::io::Error::other("no existing ancestor"));
                    };
                    rest.push(last);
                    existing = match existing.parent() {
                        Some(p) => p,
                        None => return Err(std::io::Error::other("no existing ancestor")),
                    };
                }
            }
        };
        let mut next = base;
        for c in rest.iter().rev() {
            match c {
                Component::ParentDir => {
                    next.pop();
                }
                Component::Normal(n) => next.push(n),
                _ => {}
            }
        }
        if next == current {
            break;
        }
        current = next;
    }
    Ok(current)
}

/// The folder of `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The temporary name `path` is written under before [`AtomicFile::commit`] renames it:
/// `.<name>.tmp-<pid>` in the same folder.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir_of(path).join(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// What separates a temporary name from the writer's process id.
const TEMP_MARK: &str = ".tmp-";

/// The process id in a temporary name of [`temp_path`]'s pattern (`.<name>.tmp-<pid>`).
fn temp_pid(file_name: &str) -> Option<u32> {
    let (name, pid) = file_name.strip_prefix('.')?.rsplit_once(TEMP_MARK)?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this id exists (one of another user counts).
#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    // 0 and ids beyond i32 would name process groups, not a process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn pid_alive(_pid: u32) -> bool {
    // Unknown: never taken for dead.
    true
}

/// Removes the temporary files of `path` ([`temp_path`]) that a process no longer running
/// left behind (killed before it could remove them).
fn remove_dead_temps_of(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return;
    };
    let prefix = format!(".{name}{TEMP_MARK}");
    for e in entries.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with(&prefix) {
            continue;
        }
        let Some(pid) = temp_pid(&file_name) else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An exclusive hold on a folder that one docsweep run at a time writes into (a report
/// directory): a lock on `<dir>/.docsweep.lock`, released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{dir}: another docsweep run is writing here (it holds {lock}); try again when it is done"
    )]
    Busy { dir: PathBuf, lock: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DirLock {
    /// Locks `dir` (without waiting: a second run is refused) and, holding the lock, removes
    /// every temporary file of [`temp_path`]'s pattern in it: no other run can be writing
    /// them, so they are leftovers of a run that was killed. (Process ids do not tell: in
    /// a container every run may have the same one.) Returns the lock and what was removed.
    pub fn acquire(dir: &Path) -> Result<(DirLock, Vec<PathBuf>), LockError> {
        let lock = dir.join(".docsweep.lock");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        let file = open_options(Access::Private)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io(&lock))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    lock,
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock)(e)),
        }
        let mut removed = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if temp_pid(&name).is_some() && e.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
                removed.push(e.path());
            }
        }
        Ok((DirLock { _file: file }, removed))
    }
}

/// A folder (a report directory) replaced as a whole: its new files are written into a
/// staging folder, and [`commit`](StagedDir::commit) swaps the staging folder in with one
/// atomic exchange of the two names (Linux `renameat2(RENAME_EXCHANGE)`), so a reader, or a
/// run killed at any moment, sees the old folder complete or the new one complete.
///
/// The staging folder is `.<name>.tmp-<pid>` next to the folder. Entries of the old folder
/// the new one does not replace (the lock file, a checkpoint, anything of the user's) are
/// hard-linked into it just before the swap, so they stay, the same files (the lock keeps
/// holding). Where that cannot be done (the parent folder is not writable, the folder is a
/// mount point, the file system cannot exchange or hard-link, not Linux), or should not be
/// (the folder holds sub-folders, so it is more than a report directory, or it is the
/// working directory or one of its parents), the staging folder is inside the folder and
/// each file is renamed into place on its own.
///
/// The caller holds the folder's [`DirLock`]: no other run writes a staging folder for it,
/// so any that exists is a killed run's and is removed. Dropped without a commit, the
/// staging folder is removed.
#[derive(Debug)]
pub struct StagedDir {
    /// The folder, resolved (a symbolic link to it is kept and its target replaced).
    dir: PathBuf,
    /// Where the new files are written.
    stage: PathBuf,
    /// Whether `stage` is next to `dir` (swapped in) or inside it (files renamed in).
    beside: bool,
    done: bool,
}

/// The name of the staging folder inside a folder that cannot be swapped.
const INNER_STAGE: &str = ".docsweep-stage";

impl StagedDir {
    pub fn create(dir: &Path) -> std::io::Result<StagedDir> {
        let dir = dir.canonicalize()?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Leftovers of killed runs: beside the folder and inside it.
        if let Some(parent) = dir.parent() {
            let prefix = format!(".{name}{TEMP_MARK}");
            if let Ok(entries) = std::fs::read_dir(parent) {
                for e in entries.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.starts_with(&prefix)
                        && temp_pid(&n).is_some()
                        && e.file_type().is_ok_and(|t| t.is_dir())
                    {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let inner = dir.join(INNER_STAGE);
        if inner.exists() {
            std::fs::remove_dir_all(&inner)?;
        }
        let mode = std::fs::metadata(&dir)?.permissions();
        // Only a folder of files is swapped: never one the process works in (its working
        // directory would be the removed old folder), never one with sub-folders.
        let holds_cwd = std::env::current_dir()
            .and_then(|d| d.canonicalize())
            .map_or(true, |cwd| cwd.starts_with(&dir));
        let only_files = std::fs::read_dir(&dir)?
            .flatten()
            .all(|e| e.file_type().is_ok_and(|t| !t.is_dir()) || e.file_name() == INNER_STAGE);
        let beside = cfg!(target_os = "linux")
            && !name.is_empty()
            && dir.parent().is_some()
            && !holds_cwd
            && only_files;
        if beside {
            let stage = temp_path(&dir);
            if std::fs::create_dir(&stage).is_ok() {
                let _ = std::fs::set_permissions(&stage, mode);
                return Ok(StagedDir {
                    dir,
                    stage,
                    beside: true,
                    done: false,
                });
            }
        }
        std::fs::create_dir(&inner)?;
        let _ = std::fs::set_permissions(&inner, mode);
        Ok(StagedDir {
            dir,
            stage: inner,
            beside: false,
            done: false,
        })
    }

    /// Where the new files go.
    pub fn path(&self) -> &Path {
        &self.stage
    }

    /// Where `path`, a path in the folder (as given or resolved), is written: the same
    /// place in the staging folder. `None` for a path outside the folder.
    pub fn staged(&self, path: &Path) -> Option<PathBuf> {
        let resolved = resolve(path).ok()?;
        let rel = resolved.strip_prefix(&self.dir).ok()?;
        if rel.as_os_str().is_empty() {
            return None;
        }
        Some(self.stage.join(rel))
    }

    /// Puts the staged files in place: with one exchange when the staging folder is beside
    /// the folder (falling back to file by file when the file system refuses), else file
    /// by file.
    pub fn commit(mut self) -> std::io::Result<()> {
        if self.beside {
            match self.swap() {
                Ok(()) => {
                    self.done = true;
                    // The old folder now has the staging name. What appeared in it after
                    // the links were made is linked too, then the old folder goes.
                    #[cfg(target_os = "linux")]
                    let _ = link_missing(&self.stage, &self.dir);
                    let _ = std::fs::remove_dir_all(&self.stage);
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Other => return Err(e),
                Err(_) => {}
            }
        }
        move_entries(&self.stage, &self.dir)?;
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.stage);
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Links what the staging folder lacks from the folder, syncs, and exchanges the two.
    /// An error of kind `Other` is final; any other means "cannot here" (fall back).
    #[cfg(target_os = "linux")]
    fn swap(&self) -> std::io::Result<()> {
        link_missing(&self.dir, &self.stage)?;
        if let Ok(d) = File::open(&self.stage) {
            d.sync_all()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let c = |p: &Path| {
            std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        };
        let (from, to) = (c(&self.stage)?, c(&self.dir)?);
        // SAFETY: two valid NUL-terminated paths; renameat2 only reads them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if let Some(parent) = self.dir.parent() {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn swap(&self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.stage);
        }
    }
}

/// Hard-links into `to` every entry of `from` that `to` lacks (folders recreated and
/// filled the same way, symbolic links copied), except temporary files and staging
/// folders. An error means the file system cannot (the caller falls back).
#[cfg(target_os = "linux")]
fn link_missing(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if temp_pid(&n).is_some() || n == INNER_STAGE {
            continue;
        }
        let target = to.join(&name);
        let t = e.file_type()?;
        if t.is_dir() {
            if !target.exists() {
                std::fs::create_dir(&target)?;
                std::fs::set_permissions(&target, e.metadata()?.permissions())?;
            }
            if target.is_dir() {
                link_missing(&e.path(), &target)?;
            }
        } else if std::fs::symlink_metadata(&target).is_err() {
            if t.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &target)?;
            } else {
                std::fs::hard_link(e.path(), &target)?;
            }
        }
    }
    Ok(())
}

/// Renames every entry of `from` into `to` (replacing what is there; a folder into an
/// existing folder entry by entry).
fn move_entries(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() && target.is_dir() {
            move_entries(&e.path(), &target)?;
        } else {
            std::fs::rename(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Renames a complete, synced `tmp` over `path` and syncs the folder, so the new entry
/// survives a crash.
pub fn rename_into_place(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    if let Ok(d) = File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A file written under its temporary name ([`temp_path`]) and moved into place by
/// [`commit`](AtomicFile::commit), so readers never see a half-written file. Dropped
/// without a commit, the temporary file is removed.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl AtomicFile {
    pub fn create(path: &Path, access: Access) -> std::io::Result<AtomicFile> {
        remove_dead_temps_of(path);
        let tmp = temp_path(path);
        // A leftover of a process that had this pid before is replaced.
        let file = create(&tmp, access)?;
        Ok(AtomicFile {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The path the file gets on commit.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the file is already committed"))
    }

    /// Syncs the file and renames it into place.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = self.file.take();
        if let Some(f) = &file {
            f.sync_all()?;
        }
        drop(file);
        rename_into_place(&self.tmp, &self.path)?;
        // Committed: nothing is left to remove.
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically ([`AtomicFile`]) with `access`.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let mut f = AtomicFile::create(path, access)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests;
