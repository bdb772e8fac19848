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
6. **seccomp**: ``fork``, ``vfork``, ``execve``, non-thread ``clone``, new sockets, IPC, memfds, io_uring,
   namespaces and mounts fail (threads still work), so the worker cannot start processes at all and
   keeps only the socketpair it was given.

Before step 2, when started as root, the worker mounts a private, size-bounded tmpfs on its
temporary folder (:func:`private_tmpfs`, in a mount namespace of its own): what it writes is bounded
in bytes and files, and vanishes with it.

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
_LANDLOCK = {"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446}
# name: (x86_64, aarch64); None where the architecture has no such call
_NUMBERS = {
    "clone": (56, 220), "clone3": (435, 435), "fork": (57, None), "vfork": (58, None), "execve": (59, 221),
    "execveat": (322, 281), "socket": (41, 198), "socketpair": (53, 199), "shmget": (29, 194), "shmat": (30, 196),
    "semget": (64, 190), "msgget": (68, 186), "mq_open": (240, 180), "memfd_create": (319, 279),
    "memfd_secret": (447, 447), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "open_tree": (428, 428),
    "move_mount": (429, 429), "fsopen": (430, 430), "fsmount": (432, 432), "mount_setattr": (442, 442),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "keyctl": (250, 219), "add_key": (248, 217),
    "request_key": (249, 218), "open_by_handle_at": (304, 265),
}
_COLUMN = {"x86_64": 0, "aarch64": 1}.get(_ARCH)
_SYSCALLS = {} if _COLUMN is None else {
    **_LANDLOCK, **{n: v[_COLUMN] for n, v in _NUMBERS.items() if v[_COLUMN] is not None}}
# refused with EPERM: processes; every new socket (the worker keeps only the socketpair it was given);
# SysV and POSIX IPC, memfds (memory outside the address-space limit); io_uring; namespaces and mounts;
# other processes' memory; BPF, perf, userfaultfd, keyrings, file handles (which bypass paths)
DENIED = ("fork", "vfork", "execve", "execveat", "socket", "socketpair", "shmget", "shmat", "semget", "msgget",
          "mq_open", "memfd_create", "memfd_secret", "io_uring_setup", "io_uring_enter", "io_uring_register",
          "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
          "fsmount", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
          "userfaultfd", "keyctl", "add_key", "request_key", "open_by_handle_at")
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
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


# ------------------------------------------------------------------------------ private tmpfs
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18


def private_tmpfs(path: str, size: int, inodes: int, uid: int | None) -> list[str]:
    """Mount a tmpfs of ``size`` bytes and ``inodes`` files on ``path``, in a mount namespace of this
    process's own (root only): the kernel bounds what it writes, and frees it when the process ends
    (no other process can hold the namespace: the worker cannot start any)."""
    if os.geteuid() != 0:
        return ["tmpfs: not root, no private file system (the trusted side bounds the temporary folder's size)"]
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount(/, private)")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    options = f"size={size},nr_inodes={inodes},mode=0700{owner}".encode()
    _check(_libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options),
           f"mount(tmpfs, {path})")
    return [f"tmpfs: private, {size >> 20} MiB and {inodes} files at most"]


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


def _program(denied: list[int]) -> bytes:
    """The BPF program: other architectures, x32 calls and ``denied`` fail with EPERM; ``clone3`` with
    ENOSYS (libc then falls back to ``clone``, whose flags a filter can read); ``clone`` is allowed for a
    thread without namespace flags only."""
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, DENY, NOSYS = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    code, labels = [], {}

    def emit(op, k, jt=None, jf=None):
        code.append((op, k, jt, jf))

    emit(LD, 4)  # the architecture
    emit(JEQ, _AUDIT_ARCH, None, "deny")
    emit(LD, 0)  # the call's number
    emit(JGE, 0x40000000, "deny")
    for nr in denied:
        emit(JEQ, nr, "deny")
    emit(JEQ, _SYSCALLS["clone3"], "nosys")
    emit(JEQ, _SYSCALLS["clone"], "clone")
    emit(RET, ALLOW)
    labels["clone"] = len(code)
    emit(LD, 16)  # clone's flags (low 32 bits of args[0])
    emit(JSET, CLONE_NAMESPACES, "deny")
    emit(JSET, CLONE_THREAD, "allow")
    for name, k in (("deny", DENY), ("allow", ALLOW), ("nosys", NOSYS)):
        labels[name] = len(code)
        emit(RET, k)
    return b"".join(_bpf(op, labels[jt] - i - 1 if jt else 0, labels[jf] - i - 1 if jf else 0, k)
                    for i, (op, k, jt, jf) in enumerate(code))


def forbid_processes() -> list[str]:
    """A seccomp filter (see :data:`DENIED`): no processes, no new sockets, no shared memory or memfds,
    no io_uring, no namespaces or mounts; threads still work."""
    if _AUDIT_ARCH is None or not _SYSCALLS:
        return [f"seccomp: no filter for architecture {_ARCH} (processes, sockets and IPC are not forbidden)"]
    prog = _program([_SYSCALLS[n] for n in DENIED if n in _SYSCALLS])
    filt = ctypes.create_string_buffer(prog, len(prog))
    fprog = ctypes.create_string_buffer(struct.pack("<HxxxxxxQ", len(prog) // 8, ctypes.addressof(filt)), 16)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "prctl(SECCOMP)")
    return ["seccomp: fork, exec, non-thread clone, namespaces, mounts, new sockets of any family, SysV/POSIX IPC, "
            "memfds, io_uring, ptrace and bpf refused"]
