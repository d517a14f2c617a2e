//! What the executor process may do, applied before it starts a thread or runs any
//! JavaScript: user code runs there, and a V8 bug that gives it native code must still find
//! nothing worth having.
//!
//! - **Files (Landlock):** read-only access to what TLS, DNS, time zones and the runtime
//!   need (`/etc/ssl`, `/etc/resolv.conf`, `/usr/lib`, `/proc/self`, ...); no writes
//!   anywhere; no read of keel's data dir, config file or the rest of `/etc`; no execution.
//!   Where the kernel has Landlock ABI ≥ 6, no signals to processes outside the sandbox.
//! - **System calls (seccomp):** no `execve`/`execveat`, no new processes (`fork`,
//!   `vfork`, `clone` without `CLONE_THREAD`), no `ptrace`/`process_vm_*`, no signals to
//!   other processes, no mounts, namespaces, modules, BPF, keyrings or `perf_event_open`.
//!   `clone3` answers `ENOSYS` so that glibc creates threads with `clone`, whose flags the
//!   filter can read.
//! - **Inheritance:** no open file but the socket to the main process (fd 3), an empty
//!   environment, not dumpable (no `/proc/<pid>/mem` or ptrace from the same uid), and
//!   `PR_SET_PDEATHSIG` so it never outlives keel.
//!
//! Each layer is applied best-effort: a kernel without Landlock or seccomp still runs the
//! executor, and [`SandboxReport`] says what is enforced (health, logs, `/flow/status`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the sandbox enforces in this executor process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxReport {
    /// `enforced`, `partially enforced (...)`, or why not.
    pub landlock: String,
    /// `enforced` or why not.
    pub seccomp: String,
}

impl SandboxReport {
    /// Both layers fully in place.
    pub fn complete(&self) -> bool {
        self.landlock == "enforced" && self.seccomp == "enforced"
    }

    /// One line for health and logs.
    pub fn summary(&self) -> String {
        format!("landlock {}, seccomp {}", self.landlock, self.seccomp)
    }
}

/// Paths the executor process may read (those that exist). Everything TLS roots, DNS
/// resolution (glibc reads these per lookup and loads NSS modules), time zones and the
/// Rust/V8 runtime (stack bounds, CPU count) read after startup.
const READABLE: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/proc/self",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/dev/urandom",
    "/dev/null",
];

/// Applies every layer to the calling process. Call it while the process has one thread.
pub fn apply() -> SandboxReport {
    close_inherited_files();
    // SAFETY: prctl with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let landlock = match restrict_files() {
        Ok(s) => s,
        Err(e) => format!("not enforced ({e})"),
    };
    let seccomp = match restrict_syscalls() {
        Ok(()) => "enforced".to_string(),
        Err(e) => format!("not enforced ({e})"),
    };
    SandboxReport { landlock, seccomp }
}

/// Closes every descriptor above the IPC socket: nothing of the main process (store,
/// listeners, log files) is reachable even if one was opened without close-on-exec.
fn close_inherited_files() {
    let first = super::ipc::CHILD_FD as libc::c_uint + 1;
    // SAFETY: close_range closes descriptors only; no Rust object owns these in a process
    // that has just started.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
    if rc != 0 {
        // Kernels before 5.9: close what /proc lists instead.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd >= first as i32)
                .collect();
            for fd in fds {
                // SAFETY: as above.
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn restrict_files() -> Result<String, landlock::RulesetError> {
    use landlock::{
        Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, ABI,
    };
    let abi = ABI::V6;
    let readable: Vec<&str> = READABLE
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    let read = AccessFs::from_read(abi) & !AccessFs::Execute;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.scope(Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(landlock::path_beneath_rules(&readable, read)))
        .and_then(|r| r.restrict_self())?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "enforced".to_string(),
        RulesetStatus::PartiallyEnforced => {
            "partially enforced (an older kernel's Landlock ABI)".to_string()
        }
        RulesetStatus::NotEnforced => "not enforced (this kernel has no Landlock)".to_string(),
    })
}

fn restrict_syscalls() -> Result<(), seccompiler::Error> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };
    let arch = std::env::consts::ARCH.try_into()?;
    let own_pid = std::process::id() as u64;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
    let cond = |arg, op, value| SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value);
    // A new process: clone without CLONE_THREAD. Threads (the pool's isolates) stay allowed.
    denied.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![cond(
            0,
            SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
            0,
        )?])?],
    );
    // Signals only to this process's own threads (abort() raises SIGABRT that way).
    denied.insert(
        libc::SYS_tgkill,
        vec![SeccompRule::new(vec![cond(0, SeccompCmpOp::Ne, own_pid)?])?],
    );
    let deny = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    // clone3 passes its flags through a pointer the filter cannot read: make glibc fall
    // back to clone. A second filter, since one filter has one match action.
    let no_clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    for filter in [deny, no_clone3] {
        let program: seccompiler::BpfProgram = filter.try_into()?;
        seccompiler::apply_filter(&program)?;
    }
    Ok(())
}

/// System calls the executor process never needs.
const DENIED: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pidfd_getfd,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_chroot,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_personality,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_syslog,
    libc::SYS_mknodat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mknod,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// `keel executor-sandbox-probe`: applies the sandbox to this process, then tries what it
/// must refuse and prints one JSON object per attempt (`{"try", "refused", "detail"}`).
/// The e2e tests run it; it shares [`apply`] with the executor process.
pub fn probe(deny_read: &[std::path::PathBuf]) -> Vec<serde_json::Value> {
    let report = apply();
    let mut out = vec![serde_json::json!({
        "try": "sandbox", "refused": report.complete(), "detail": report.summary(),
    })];
    let mut record = |what: String, result: std::io::Result<()>| {
        out.push(serde_json::json!({
            "try": what,
            "refused": result.is_err(),
            "detail": result.err().map(|e| e.to_string()).unwrap_or_default(),
        }));
    };
    for path in deny_read {
        record(
            format!("read {}", path.display()),
            std::fs::read(path).map(|_| ()),
        );
        let target = path.with_extension("probe-write");
        record(
            format!("write {}", target.display()),
            std::fs::write(&target, b"x"),
        );
    }
    record(
        "write /tmp/keel-sandbox-probe".into(),
        std::fs::write("/tmp/keel-sandbox-probe", b"x"),
    );
    record(
        "spawn /bin/true".into(),
        std::process::Command::new("/bin/true").status().map(|_| ()),
    );
    let check = |rc: libc::c_long| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: fork in a process whose child would only `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: leaving the forked child at once.
        unsafe { libc::_exit(0) };
    }
    record("fork".into(), check(pid as libc::c_long));
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: valid NUL-terminated arguments; on success the probe is replaced, which the
    // test notices as missing output.
    let rc = unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    record("execve /bin/true".into(), check(rc as libc::c_long));
    // SAFETY: signal 0 only checks permission.
    let rc = unsafe { libc::kill(libc::getppid(), 0) };
    record("signal the parent".into(), check(rc as libc::c_long));
    out
}
