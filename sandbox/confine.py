"""Confinement the worker applies to itself before it imports any student code (Linux).

In order:

1. **resource limits** (``setrlimit``): CPU seconds, address space, file size, open files, no core
   dumps, and (for an unprivileged user) the number of processes;
2. **no new privileges** (``prctl(PR_SET_NO_NEW_PRIVS)``), which the next steps require;
3. **Landlock** (kernel 5.13+): the process may read only the Python installation and system
   directories, and read and write only its own temporary directory; where the kernel supports it,
   no TCP connections and no signals or abstract sockets to processes outside the sandbox;
4. **an unprivileged user** when started as root: a uid of its own (so every process it might leave
   behind can be found and killed), no groups; it keeps ``CAP_DAC_READ_SEARCH`` only when Landlock is
   on and the Python installation is unreadable to other users (e.g. a pyenv under ``/root``), so
   that it can still import from it: Landlock then decides what it reads;
5. **parent death**: the worker is killed when the trusted process dies;
6. **seccomp**: ``fork``, ``vfork``, ``execve`` and non-thread ``clone`` fail (threads still work), so the
   worker cannot start processes at all.

Each step reports what it did; a step the kernel does not offer is skipped and reported, never
silently assumed. Standard library only.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

PR_SET_NO_NEW_PRIVS = 38
PR_SET_KEEPCAPS = 8
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_ARCH = platform.machine()
_SYSCALLS = {  # name -> number, per architecture
    "x86_64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
               "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435},
    "aarch64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
                "clone": 220, "execve": 221, "execveat": 281, "clone3": 435},
}.get(_ARCH, {})
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(_ARCH)


def _check(ret, what):
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return ret


# ------------------------------------------------------------------------------ rlimits
def set_limits(cpu_seconds: int, address_space: int | None, file_size: int, open_files: int = 256,
               processes: int | None = None) -> list[str]:
    """``address_space`` None: no limit (a CUDA context reserves far more address space than it uses)."""
    lim = [(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5), f"CPU {cpu_seconds} s"),
           (resource.RLIMIT_FSIZE, (file_size, file_size), f"file size {file_size >> 20} MiB"),
           (resource.RLIMIT_NOFILE, (open_files, open_files), f"{open_files} open files"),
           (resource.RLIMIT_CORE, (0, 0), "no core dumps")]
    if address_space is not None:
        lim.append((resource.RLIMIT_AS, (address_space, address_space), f"address space {address_space >> 20} MiB"))
    if processes is not None:
        lim.append((resource.RLIMIT_NPROC, (processes, processes), f"{processes} processes"))
    for which, value, _ in lim:
        resource.setrlimit(which, value)
    return ["rlimits: " + ", ".join(d for *_, d in lim)]


def no_new_privileges():
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # others of the same uid cannot ptrace or read /proc/<pid>/mem


def die_with_parent(parent_pid: int) -> list[str]:
    """SIGKILL when the trusted process dies (set after the uid change, which would clear it)."""
    _check(_libc.prctl(1, 9, 0, 0, 0), "prctl(PDEATHSIG)")  # PR_SET_PDEATHSIG, SIGKILL
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(1)
    return ["killed with its parent"]


# ------------------------------------------------------------------------------ Landlock
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
_FS_FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  # rights valid on a file


def landlock_abi() -> int:
    nr = _SYSCALLS.get("landlock_create_ruleset")
    if nr is None:
        return 0
    ret = _libc.syscall(nr, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    return max(int(ret), 0)


def landlock(read_roots: list[str], write_roots: list[str], write_files: list[str]) -> list[str]:
    """Restrict file access to ``read_roots`` (read, execute) and ``write_roots`` (everything)."""
    abi = landlock_abi()
    if abi < 1:
        return ["landlock: not available in this kernel (the worker's file access is not restricted)"]
    all_fs = (1 << 13) - 1
    if abi >= 2:
        all_fs |= 1 << 13  # REFER
    if abi >= 3:
        all_fs |= 1 << 14  # TRUNCATE
    if abi >= 5:
        all_fs |= 1 << 15  # IOCTL_DEV
    net = 0b11 if abi >= 4 else 0  # BIND_TCP, CONNECT_TCP: none allowed
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals: only within the sandbox
    attr = struct.pack("<QQQ", all_fs, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    buf = ctypes.create_string_buffer(attr[:size], size)
    fd = _check(_libc.syscall(_SYSCALLS["landlock_create_ruleset"], buf, ctypes.c_size_t(size), ctypes.c_uint32(0)),
                "landlock_create_ruleset")
    added = []
    try:
        device_rights = _FS_READ | (1 << 1) | (1 << 15)  # read, write, ioctl (GPU device files need ioctl)
        for paths, rights in ((read_roots, _FS_READ), (write_roots, all_fs), (write_files, device_rights)):
            for path in paths:
                try:
                    pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights & all_fs
                    if not os.path.isdir(path):
                        allowed &= _FS_FILE_RIGHTS
                    rule = ctypes.create_string_buffer(struct.pack("<Qi", allowed, pfd), 12)
                    _check(_libc.syscall(_SYSCALLS["landlock_add_rule"], ctypes.c_int(fd), ctypes.c_int(1), rule,
                                         ctypes.c_uint32(0)), f"landlock_add_rule({path})")
                    added.append(path)
                finally:
                    os.close(pfd)
        _check(_libc.syscall(_SYSCALLS["landlock_restrict_self"], ctypes.c_int(fd), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(fd)
    extra = (", no TCP" if net else "") + (", signals scoped" if scoped else "")
    return [f"landlock ABI {abi}: read-only {len(read_roots)} roots, read-write {write_roots}{extra}"]


# ------------------------------------------------------------------------------ users
CAP_DAC_READ_SEARCH = 2


def drop_user(uid: int, gid: int, keep_read_search: bool) -> list[str]:
    """setresgid/setresuid to (uid, gid) with no groups; optionally keep CAP_DAC_READ_SEARCH."""
    if keep_read_search:
        _check(_libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(KEEPCAPS)")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if keep_read_search:
        header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        bit = 1 << CAP_DAC_READ_SEARCH
        data = struct.pack("<6I", bit, bit, 0, 0, 0, 0)  # effective, permitted, inheritable (x2 words)
        _check(_libc.capset(ctypes.create_string_buffer(header, 8), ctypes.create_string_buffer(data, 24)), "capset")
        _libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
        return [f"user: uid {uid}, gid {gid}, no groups, only CAP_DAC_READ_SEARCH (reads confined by Landlock)"]
    return [f"user: uid {uid}, gid {gid}, no groups, no capabilities"]


def readable_by_others(path: str) -> bool:
    """Whether every directory on the way to ``path`` lets other users search it and ``path`` is readable."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        d = os.sep.join(parts[:i]) or os.sep
        try:
            mode = os.stat(d).st_mode
        except OSError:
            return False
        if not mode & 0o001 and os.path.isdir(d):
            return False
    return bool(os.stat(path).st_mode & 0o004)


# ------------------------------------------------------------------------------ seccomp
def _bpf(code, jt, jf, k):
    return struct.pack("<HBBI", code, jt, jf, k)


def forbid_processes() -> list[str]:
    """A seccomp filter: fork, vfork, execve(at) and non-thread clone fail with EPERM; clone3 with
    ENOSYS (so that libc falls back to clone, whose flags the filter can read)."""
    if _AUDIT_ARCH is None:
        return [f"seccomp: no filter for architecture {_ARCH} (processes are not forbidden)"]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, DENY, NOSYS = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    CLONE_THREAD = 0x00010000
    s = _SYSCALLS
    denied = [s[n] for n in ("fork", "vfork", "execve", "execveat") if n in s]
    n_denied = len(denied)
    body = []
    body.append(("jeq_arch", _AUDIT_ARCH))
    body.append(("ld", 0))
    body.append(("jge_deny", 0x40000000))
    for nr in denied:
        body.append(("jeq_deny", nr))
    body.append(("jeq_nosys", s["clone3"]))
    body.append(("jeq_clone", s["clone"]))
    body.append(("ret", ALLOW))
    body.append(("ld", 16))  # clone flags (low 32 bits of args[0])
    body.append(("jset_allow", CLONE_THREAD))
    body.append(("ret", DENY))  # DENY label
    body.append(("ret", ALLOW))  # ALLOW-thread label
    body.append(("ret", NOSYS))
    # absolute indexes (instruction 0 loads the architecture; body[i] is instruction i + 1)
    idx = {"deny": len(body) - 2, "allow_thread": len(body) - 1, "nosys": len(body), "clone_flags": 7 + n_denied}
    prog = [_bpf(LD, 0, 0, 4)]
    for i, (op, k) in enumerate(body, start=1):
        nxt = i + 1
        if op == "ld":
            prog.append(_bpf(LD, 0, 0, k))
        elif op == "ret":
            prog.append(_bpf(RET, 0, 0, k))
        elif op == "jeq_arch":
            prog.append(_bpf(JEQ, 0, idx["deny"] - nxt, k))
        elif op == "jge_deny":
            prog.append(_bpf(JGE, idx["deny"] - nxt, 0, k))
        elif op == "jeq_deny":
            prog.append(_bpf(JEQ, idx["deny"] - nxt, 0, k))
        elif op == "jeq_nosys":
            prog.append(_bpf(JEQ, idx["nosys"] - nxt, 0, k))
        elif op == "jeq_clone":
            prog.append(_bpf(JEQ, idx["clone_flags"] - nxt, 0, k))
        elif op == "jset_allow":
            prog.append(_bpf(JSET, idx["allow_thread"] - nxt, 0, k))
    filt = ctypes.create_string_buffer(b"".join(prog), 8 * len(prog))
    fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", len(prog), ctypes.addressof(filt)), 16)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "prctl(SECCOMP)")
    return ["seccomp: fork, vfork, exec and non-thread clone refused"]
