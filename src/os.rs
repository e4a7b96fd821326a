//! What docsweep asks of the operating system, in one place: who is running it (the
//! `actor` of the audit log and the journal).

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

#[cfg(test)]
mod tests {
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
}
