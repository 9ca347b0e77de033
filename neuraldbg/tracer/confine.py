"""Level (b) isolation: the tracer child confines itself with Landlock and
seccomp before any user code runs (where bubblewrap is missing or user
namespaces are off).

Standard library only (ctypes, imported when called): the child loads this
file by path. seccomp filters are compiled by libseccomp (``libseccomp.so.2``,
which apt, systemd and most distributions depend on) through a few ctypes
declarations here rather than the ``pyseccomp`` package, whose import costs
25 ms or more (``typing``, and an ``ldconfig`` subprocess to find the
library) on every trace start.

- Landlock (ABI 1 and later; each ABI's rights where the kernel knows them):
  no file writes, creations, removals, renames or truncation outside the
  sandbox root (``/dev/null`` excepted), no device nodes anywhere, no
  execution; reads everywhere except other processes' ``/proc`` entries
  (environ, cmdline, maps: the read rules, not Landlock's ptrace rule, keep
  those out), most of ``/proc``'s kernel files (kcore, kallsyms, kmsg, ...)
  and devices other than null, zero, full, random and urandom (no terminals,
  disks or input devices); no TCP bind or connect (ABI 4); no device ioctls
  (ABI 5); no signals to, and no abstract unix sockets of, processes outside
  the sandbox (ABI 6); no ptrace of processes outside it (all ABIs).
- seccomp (default allow; refused calls fail with EPERM): new processes and
  programs (fork, vfork, execve, clone without CLONE_THREAD or with a
  namespace flag; clone3 fails with ENOSYS so that glibc creates threads with
  clone), sockets (socketpair stays), ptrace and cross-process memory,
  signals to other processes, namespaces and mounts, kernel interfaces
  (bpf, perf, io_uring, keyrings, modules, kexec, clocks, swap, reboot),
  chmod, chown and extended attributes (Landlock cannot restrict them),
  raising resource limits, TIOCSTI; on Landlock ABI 1-2 also truncation.
  Calls from another architecture's syscall ABI (i386 on x86_64) fail with
  ENOSYS.

Run as a script (``python -s -S -P confine.py ROOT``) it confines itself,
checks that the confinement holds, and prints its description (exit 0), or
says why not on stderr (exit 1).
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False  # typing costs the child's startup; mypy still reads the block below
if TYPE_CHECKING:
    from typing import Any

# -- Landlock (include/uapi/linux/landlock.h) --------------------------------
# The Landlock syscalls have the generic numbers on both supported machines.
LANDLOCK_SYSCALLS: dict[str, tuple[int, int, int]] = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
LIBSECCOMP = "libseccomp.so.2"
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_BLOCK = 1 << 11
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_TCP = (1 << 0) | (1 << 1)  # ABI 4: bind, connect
_SCOPES = (1 << 0) | (1 << 1)  # ABI 6: abstract unix sockets, signals
_KNOWN_ABI = 7  # the newest ABI whose rights this file knows; later ones add nothing we need

# /proc entries the interpreter and common libraries read (os.getloadavg,
# os.cpu_count fallbacks, sysctl values); the rest (kcore, kallsyms, kmsg,
# keys, timer_list, ...) and other processes' entries stay unreadable.
_PROC_READABLE = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "filesystems", "sys")
_DEV_READABLE = ("null", "zero", "full", "random", "urandom")

# -- seccomp ------------------------------------------------------------------
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_CMP_NE = 1
_SCMP_CMP_MASKED_EQ = 7
_NR_SCMP_ERROR = -1

# Refused outright (EPERM). Names the kernel or libseccomp does not know on
# this machine are skipped (a call that does not exist needs no rule).
_DENIED_SYSCALLS = (
    # new processes and programs (threads: the clone rules below)
    "fork", "vfork", "execve", "execveat",
    # sockets of any family (a unix socket could reach docker.sock); socketpair stays
    "socket", "connect", "bind", "listen", "accept", "accept4", "sendmsg", "sendmmsg",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "kcmp", "tkill", "process_madvise", "process_mrelease", "migrate_pages", "move_pages", "ioprio_set",
    "sched_setscheduler", "sched_setparam", "sched_setattr",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "open_tree_attr",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel interfaces (io_uring would run calls past this filter)
    "bpf", "perf_event_open", "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
    "keyctl", "add_key", "request_key", "personality", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "syslog", "vhangup", "iopl", "ioperm", "modify_ldt", "uselib", "fanotify_init", "name_to_handle_at",
    "open_by_handle_at", "lookup_dcookie", "sethostname", "setdomainname",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    # file metadata, which Landlock does not cover: chmod/chown/xattrs anywhere
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "setxattrat", "removexattrat",
    # resource limits (root could raise the hard ones); prlimit64: below
    "setrlimit",
)
# Syscalls newer than some libseccomp releases know, by their generic number
# (the same on x86_64 and aarch64).
_GENERIC_NUMBERS = {
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434,
    "clone3": 435, "openat2": 437, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
    "quotactl_fd": 443, "process_mrelease": 448, "fchmodat2": 452, "setxattrat": 463,
    "removexattrat": 466, "open_tree_attr": 467,
}
_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_LOW32 = 0xFFFFFFFF
_F_SETOWN, _F_SETOWN_EX = 8, 15
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
_S_IFMT, _S_IFCHR, _S_IFBLK = 0o170000, 0o020000, 0o060000
_O_ACCMODE_TRUNC = os.O_ACCMODE | os.O_TRUNC

_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_SECCOMP = 21


def _seccomp_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _Native:
    """The ctypes handles apply() needs, loaded once per call."""

    def __init__(self) -> None:
        machine = os.uname().machine
        numbers = LANDLOCK_SYSCALLS.get(machine)
        if numbers is None or not sys.platform.startswith("linux"):
            raise OSError(errno.ENOSYS, f"Landlock confinement supports Linux on x86_64 and aarch64, not {machine}")
        import ctypes

        self.ctypes = ctypes
        self.create_nr, self.add_rule_nr, self.restrict_nr = numbers
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.libc.prctl.restype = ctypes.c_int

        class RulesetAttr(ctypes.Structure):
            _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

        class PathBeneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        class ArgCmp(ctypes.Structure):
            _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

        self.RulesetAttr, self.PathBeneath, self.ArgCmp = RulesetAttr, PathBeneath, ArgCmp

    def syscall(self, nr: int, *args: Any) -> int:
        result = self.libc.syscall(self.ctypes.c_long(nr), *args)
        if result < 0:
            code = self.ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return int(result)

    def prctl(self, option: int, value: int) -> int:
        c_ulong = self.ctypes.c_ulong
        result = self.libc.prctl(self.ctypes.c_int(option), c_ulong(value), c_ulong(0), c_ulong(0), c_ulong(0))
        if result < 0:
            code = self.ctypes.get_errno()
            raise OSError(code, f"prctl({option}): {os.strerror(code)}")
        return int(result)

    def landlock_abi(self) -> int:
        """The kernel's Landlock ABI, or OSError saying why there is none."""
        try:
            return self.syscall(self.create_nr, self.ctypes.c_void_p(None), self.ctypes.c_size_t(0),
                                self.ctypes.c_uint32(_CREATE_RULESET_VERSION))
        except OSError as exc:
            why = {
                errno.ENOSYS: "the kernel has no Landlock (Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK)",
                errno.EOPNOTSUPP: "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)",
            }.get(exc.errno or 0, f"landlock_create_ruleset failed: {exc.strerror}")
            raise OSError(exc.errno, why) from None

    def libseccomp(self) -> Any:
        ctypes = self.ctypes
        try:
            lib = ctypes.CDLL(LIBSECCOMP)
        except OSError as exc:
            raise OSError(errno.ENOENT, f"cannot load {LIBSECCOMP} (Debian/Ubuntu: apt-get install libseccomp2): {exc}")
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = (ctypes.c_uint32,)
        lib.seccomp_attr_set.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32)
        lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
        lib.seccomp_rule_add_array.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.c_void_p)
        lib.seccomp_load.argtypes = (ctypes.c_void_p,)
        lib.seccomp_release.argtypes = (ctypes.c_void_p,)
        lib.seccomp_release.restype = None
        return lib


# -- Landlock ruleset -------------------------------------------------------------
def _handled_fs(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


class _Ruleset:
    """A Landlock ruleset being filled: rules by path, for the rights the ABI knows."""

    def __init__(self, native: _Native, abi: int) -> None:
        self.native = native
        self.handled = _handled_fs(abi)
        attr = native.RulesetAttr(self.handled, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
        size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct as that ABI defines it
        self.fd = native.syscall(native.create_nr, native.ctypes.byref(attr), native.ctypes.c_size_t(size),
                                 native.ctypes.c_uint32(0))
        self.pins: list[int] = []

    def allow(self, path: str, rights: int, pin: bool = False) -> bool:
        """Allow ``rights`` beneath ``path`` (file rights only on a file).
        False where the path is missing or cannot be opened: nothing to allow.
        ``pin`` keeps the descriptor open: procfs makes a new inode each time
        an evicted dentry is looked up again, and a Landlock rule is tied to
        the inode it was made on."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            if os.fstat(fd).st_mode & 0o170000 != 0o040000:  # not a directory
                rights &= _FS_FILE_RIGHTS
            rights &= self.handled
            if not rights:
                return False
            native = self.native
            rule = native.PathBeneath(rights, fd)
            native.syscall(native.add_rule_nr, native.ctypes.c_int(self.fd), native.ctypes.c_int(_RULE_PATH_BENEATH),
                           native.ctypes.byref(rule), native.ctypes.c_uint32(0))
        except OSError as exc:
            os.close(fd)
            raise OSError(exc.errno, f"landlock_add_rule({path}): {exc.strerror}") from None
        if pin:
            self.pins.append(fd)
        else:
            os.close(fd)
        return True

    def restrict(self) -> None:
        native = self.native
        try:
            native.syscall(native.restrict_nr, native.ctypes.c_int(self.fd), native.ctypes.c_uint32(0))
        except OSError as exc:
            raise OSError(exc.errno, f"landlock_restrict_self: {exc.strerror}") from None
        finally:
            os.close(self.fd)


def _fill(ruleset: _Ruleset, root: str) -> None:
    """Writes beneath ``root`` (no device nodes, no execution), ``/dev/null``,
    and reads of everything outside ``/proc`` and ``/dev`` plus the parts of
    those that programs need."""
    ruleset.allow("/", _FS_READ_DIR)  # listing any directory, /proc's included, reveals names only
    with os.scandir("/") as entries:
        for entry in entries:
            if entry.name not in ("proc", "dev") and not entry.is_symlink():
                ruleset.allow(entry.path, _FS_READ_FILE)
    ruleset.allow(f"/proc/{os.getpid()}", _FS_READ_FILE, pin=True)  # /proc/self, /proc/thread-self
    for name in _PROC_READABLE:
        ruleset.allow(f"/proc/{name}", _FS_READ_FILE, pin=True)
    for name in _DEV_READABLE:
        ruleset.allow(f"/dev/{name}", _FS_READ_FILE)
    ruleset.allow("/dev/null", _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV)
    writes = ruleset.handled & ~(_FS_EXECUTE | _FS_MAKE_CHAR | _FS_MAKE_BLOCK | _FS_IOCTL_DEV)
    if not ruleset.allow(root, writes):
        raise OSError(errno.ENOENT, f"the sandbox root {root} cannot be opened")


def _describe(abi: int, landlock: bool = True, seccomp: bool = True) -> str:
    """``Landlock ABI 7 (writes, ...) + seccomp (processes, ...)`` for what is applied."""
    described = []
    if landlock:
        parts = ["writes", "reads of /proc and devices"]
        if abi >= 4:
            parts.append("TCP")
        if abi >= 6:
            parts.append("signals, abstract sockets")
        described.append(f"Landlock ABI {abi} ({', '.join(parts)})")
    if seccomp:
        described.append("seccomp (processes, sockets, signals, namespaces, kernel interfaces)")
    return " + ".join(described)


# -- seccomp filter ---------------------------------------------------------------
def _conditional_rules(pid: int, abi: int) -> list[tuple[str, int, tuple[tuple[int, int, int, int], ...]]]:
    """(syscall, errno, argument comparisons that must all hold) rules."""
    eperm = errno.EPERM
    rules: list[tuple[str, int, tuple[tuple[int, int, int, int], ...]]] = [
        ("clone", eperm, ((0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD, 0),)),  # a process, not a thread
        *(("clone", eperm, ((0, _SCMP_CMP_MASKED_EQ, flag, flag),)) for flag in _CLONE_NAMESPACES),
        ("clone3", errno.ENOSYS, ()),  # flags live in a struct; glibc falls back to clone
        ("kill", eperm, ((0, _SCMP_CMP_NE, pid, 0),)),  # also 0 and -1: the group, everyone
        ("tgkill", eperm, ((0, _SCMP_CMP_NE, pid, 0),)),
        ("rt_sigqueueinfo", eperm, ((0, _SCMP_CMP_NE, pid, 0),)),
        ("rt_tgsigqueueinfo", eperm, ((0, _SCMP_CMP_NE, pid, 0),)),
        ("fcntl", eperm, ((1, _SCMP_CMP_MASKED_EQ, _LOW32, _F_SETOWN), (2, _SCMP_CMP_NE, pid, 0))),  # SIGIO
        ("fcntl", eperm, ((1, _SCMP_CMP_MASKED_EQ, _LOW32, _F_SETOWN_EX),)),
        ("prlimit64", eperm, ((2, _SCMP_CMP_NE, 0, 0),)),  # reading limits stays
        ("sendto", eperm, ((4, _SCMP_CMP_NE, 0, 0),)),  # send() on a socketpair stays
        ("ioctl", eperm, ((1, _SCMP_CMP_MASKED_EQ, _LOW32, _TIOCSTI),)),  # typing into a terminal
        ("ioctl", eperm, ((1, _SCMP_CMP_MASKED_EQ, _LOW32, _TIOCLINUX),)),
        ("setpriority", eperm, ((0, _SCMP_CMP_NE, 0, 0),)),  # only this process (0, 0)
        ("setpriority", eperm, ((1, _SCMP_CMP_NE, 0, 0),)),
        ("sched_setaffinity", eperm, ((0, _SCMP_CMP_NE, 0, 0),)),
    ]
    for name, mode_arg in (("mknod", 1), ("mknodat", 2)):  # FIFOs and sockets in the sandbox stay
        for kind in (_S_IFCHR, _S_IFBLK):
            rules.append((name, eperm, ((mode_arg, _SCMP_CMP_MASKED_EQ, _S_IFMT, kind),)))
    if abi < 3:  # Landlock before ABI 3 lets truncate() and open(O_RDONLY | O_TRUNC) through
        rules += [
            ("truncate", eperm, ()),
            ("open", eperm, ((1, _SCMP_CMP_MASKED_EQ, _O_ACCMODE_TRUNC, os.O_TRUNC),)),
            ("openat", eperm, ((2, _SCMP_CMP_MASKED_EQ, _O_ACCMODE_TRUNC, os.O_TRUNC),)),
            ("openat2", errno.ENOSYS, ()),  # its flags live in a struct
        ]
    return rules


class _Filter:
    """A libseccomp filter context: default allow, listed calls refused."""

    def __init__(self, native: _Native) -> None:
        self.native = native
        self.lib = native.libseccomp()
        self.ctx = self.lib.seccomp_init(_SCMP_ACT_ALLOW)
        if not self.ctx:
            raise OSError(errno.ENOMEM, "seccomp_init failed")
        # Another ABI on this machine (i386 on x86_64) gets ENOSYS for every call.
        self._check(self.lib.seccomp_attr_set(self.ctx, _SCMP_FLTATR_ACT_BADARCH, _seccomp_errno(errno.ENOSYS)),
                    "seccomp_attr_set")

    def _check(self, result: int, what: str) -> None:
        if result < 0:
            raise OSError(-result, f"{what}: {os.strerror(-result)}")

    def number(self, name: str) -> int | None:
        nr = int(self.lib.seccomp_syscall_resolve_name(name.encode("ascii")))
        if nr == _NR_SCMP_ERROR:  # unknown to this libseccomp: newer than it
            return _GENERIC_NUMBERS.get(name)
        return nr if nr >= 0 else None  # negative: a call this machine does not have

    def refuse(self, name: str, code: int, comparisons: tuple[tuple[int, int, int, int], ...] = ()) -> None:
        nr = self.number(name)
        if nr is None:
            return
        arg_cmp = self.native.ArgCmp
        cmps = (arg_cmp * max(len(comparisons), 1))(*(arg_cmp(*c) for c in comparisons))
        self._check(self.lib.seccomp_rule_add_array(self.ctx, _seccomp_errno(code), nr, len(comparisons), cmps),
                    f"seccomp rule for {name}")

    def load(self) -> None:
        try:
            self._check(self.lib.seccomp_load(self.ctx), "seccomp_load")
        finally:
            self.release()

    def release(self) -> None:
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None


def _build_filter(native: _Native, abi: int) -> _Filter:
    seccomp = _Filter(native)
    try:
        for name in _DENIED_SYSCALLS:
            seccomp.refuse(name, errno.EPERM)
        for name, code, comparisons in _conditional_rules(os.getpid(), abi):
            seccomp.refuse(name, code, comparisons)
    except BaseException:
        seccomp.release()
        raise
    return seccomp


# -- entry points ---------------------------------------------------------------------
def apply(root: str, *, abi: int | None = None, layers: tuple[str, ...] = ("landlock", "seccomp")) -> str:
    """Confine the calling process (for good): writes only beneath ``root``,
    no new processes, sockets, or signals to others (see the module doc).
    Returns a one-line description; raises OSError saying why when Landlock or
    seccomp cannot be applied, having confined nothing where it can tell
    beforehand. ``abi`` (at most the kernel's) and ``layers`` are for tests.
    Call it while the process has a single thread: Landlock restricts only
    the calling thread and the threads it creates later."""
    before = set(sys.modules)
    try:
        return _apply(os.path.realpath(root), abi, layers)
    finally:
        # ctypes stays unimported for the program, so the audit hook's refusal
        # of ``import ctypes`` still fires (the confinement no longer needs it).
        for name in ("ctypes", "ctypes._endian", "_ctypes"):
            if name not in before:
                sys.modules.pop(name, None)


def _apply(root: str, abi: int | None, layers: tuple[str, ...]) -> str:
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise OSError(errno.EBUSY, f"confinement must happen before threads start ({threads} running)")
    native = _Native()
    kernel_abi = native.landlock_abi()
    if abi is None:
        abi = min(kernel_abi, _KNOWN_ABI)
    elif not 1 <= abi <= kernel_abi:
        raise OSError(errno.EINVAL, f"Landlock ABI {abi} requested, the kernel has {kernel_abi}")
    seccomp = _build_filter(native, abi) if "seccomp" in layers else None  # before anything is restricted
    try:
        native.prctl(_PR_SET_NO_NEW_PRIVS, 1)
        if "landlock" in layers:
            ruleset = _Ruleset(native, abi)
            try:
                _fill(ruleset, root)
            except BaseException:
                os.close(ruleset.fd)
                raise
            ruleset.restrict()
        if seccomp is not None:
            seccomp.load()
    finally:
        if seccomp is not None:
            seccomp.release()
    return _describe(abi, "landlock" in layers, seccomp is not None)


def probe() -> tuple[str | None, str]:
    """Whether this machine supports the level, without confining the caller:
    (the description apply() would give, "") or (None, why not)."""
    try:
        native = _Native()
        abi = min(native.landlock_abi(), _KNOWN_ABI)
        try:
            native.prctl(_PR_GET_SECCOMP, 0)
        except OSError as exc:
            raise OSError(exc.errno, "the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)") from None
        _build_filter(native, abi).release()
    except OSError as exc:
        return None, exc.strerror or str(exc)
    return _describe(abi), ""


def _self_check(root: str) -> None:
    """After apply(): the refusals that matter hold (a probe that merely ran is not enough)."""
    outside = os.path.join(os.path.dirname(os.path.realpath(root)), f".neuraldbg-confine-{os.getpid()}")
    inside = os.path.join(root, "probe")
    with open(inside, "w") as handle:  # writing in the sandbox works
        handle.write("ok")
    try:
        os.close(os.open(outside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except PermissionError:
        pass
    else:
        try:
            os.unlink(outside)
        except OSError:
            pass
        raise OSError(errno.EPERM, f"confinement did not take: created {outside}")
    import _socket

    try:
        _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM).close()
    except PermissionError:
        pass
    else:
        raise OSError(errno.EPERM, "confinement did not take: a socket was created")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        os.write(2, b"usage: confine.py SANDBOX_ROOT\n")
        return 2
    try:
        description = apply(argv[1])
        _self_check(argv[1])
    except OSError as exc:
        os.write(2, f"cannot confine: {exc.strerror or exc}\n".encode("utf-8", "replace"))
        return 1
    os.write(1, (description + "\n").encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
