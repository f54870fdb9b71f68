"""Password hashing (argon2id at OWASP's parameters) and the password policy."""
from __future__ import annotations

import ctypes
import gzip
import os
import queue
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache
from importlib import resources
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import DomainError

MAX_LENGTH = 128
IDLE_SECONDS = 2.0  # without a sign-in for this long, a worker gives argon2id's memory back (HashingThread)
T = TypeVar("T")

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class HashingThread:
    """Runs every argon2id computation of the process on one thread of its own, started on first use, and
    gives the computation's memory back to the system once no computation came for `idle_seconds`.

    Each computation takes a 19 MiB block from malloc. glibc keeps a freed block of that size for the next
    one, in the arena of the thread that freed it (one arena per thread): computed on the request threads
    of a gthread worker, the process would keep a block per thread (four threads: 76 MiB for good). On one
    thread it keeps one, reused without a page fault while sign-ins keep coming; handing the work over costs
    tens of microseconds against tens of milliseconds of hashing. Returning the block after every
    computation would cost each sign-in a fifth more CPU (the block is faulted in and zeroed again, page by
    page), so it is returned only when the worker has had no sign-in for a while (`malloc_trim`, glibc's).
    Requests go on on the other threads meanwhile: argon2 releases the GIL while it computes."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._jobs: queue.SimpleQueue | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def __call__(self, work: Callable[..., T], *args: str) -> T:
        jobs = self._jobs
        if jobs is None:
            with self._lock:
                if self._jobs is None:
                    self._jobs = queue.SimpleQueue()
                    threading.Thread(target=self._run, args=(self._jobs,), name="argon2id", daemon=True).start()
                jobs = self._jobs
        future: Future[T] = Future()
        jobs.put((future, work, args))
        return future.result()

    def _run(self, jobs: queue.SimpleQueue) -> None:
        libc = _libc()
        _keep_memory(libc)
        holding = False  # whether a computation ran since memory was last given back
        while True:
            try:
                future, work, args = jobs.get(timeout=self.idle_seconds) if holding else jobs.get()
            except queue.Empty:
                _give_memory_back(libc)
                holding = False
                continue
            try:
                future.set_result(work(*args))
            except BaseException as error:  # the caller's thread raises it
                future.set_exception(error)
            holding = True

    def _forget(self) -> None:
        """In a forked child: the parent's thread is not there; the first computation starts one."""
        self._jobs = None
        self._lock = threading.Lock()


# glibc's mallopt parameters. Setting either turns off glibc's own moving thresholds, which after the first
# computation would keep the block in the heap anyway (an mmap threshold above it) and trim no thread's heap.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP = 128 << 20  # bytes: neither mmap nor trim a block of argon2id's size while sign-ins come


def _libc():
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc's; elsewhere (musl) there is nothing to do
    except (OSError, AttributeError):
        return None
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def _keep_memory(libc) -> None:
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, KEEP)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP)


def _give_memory_back(libc) -> None:
    """Return this thread's free heap top (argon2id's block) and every arena's free pages to the system.
    glibc's malloc_trim leaves the top of a thread's heap alone; freeing a chunk of 64 KiB or more trims
    it, down to M_TRIM_THRESHOLD, so the threshold is lowered for one such free."""
    if libc is None:
        return
    libc.mallopt(M_TRIM_THRESHOLD, 128 << 10)
    libc.free(libc.malloc(256 << 10))
    libc.mallopt(M_TRIM_THRESHOLD, KEEP)
    libc.malloc_trim(0)


_hashing = HashingThread()


class PasswordRejected(DomainError):
    code = "validation_failed"
    message = "The password does not meet the policy."

    def __init__(self, detail: str, field: str = "password"):
        super().__init__(detail)
        self.field = field


def normalise(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: normalise Unicode so the same password typed on two keyboards matches.
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hashing(HASHER.hash, normalise(password))


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown account) spend the same time on a dummy hash."""
    try:
        return _hashing(HASHER.verify, password_hash or dummy_hash(), normalise(password)) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    return hash_password("timing-equaliser-not-a-real-password")


@cache
def common_passwords() -> bytes:
    """The bundled list, a word a line between newlines: 160 KB, where a set of its 19,640 strings would
    cost every worker 1.8 MB."""
    data = resources.files("services.identity").joinpath("data/common-passwords.txt.gz").read_bytes()
    return ("\n" + "\n".join(gzip.decompress(data).decode().split()) + "\n").encode()


def comparison_key(text: str) -> str:
    """How a password is compared with the common list and the email: NFKC, case-folded, with no
    whitespace or invisible format characters anywhere, so `Password `, `pass word` and `pass\u200bword`
    all meet `password`. Only for comparing: the password hashed is the one typed (NFKC, nothing removed)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(char for char in folded if not (char.isspace() or unicodedata.category(char) == "Cf"))


def is_common(key: str) -> bool:
    # The key holds no whitespace, so it cannot span two lines of the list.
    return bool(key) and f"\n{key}\n".encode("utf-8", "surrogatepass") in common_passwords()


def check_policy(password: str, email: str, min_length: int, field: str = "password") -> None:
    """Raise PasswordRejected unless the password is acceptable. Never truncates."""
    length = len(normalise(password))
    if length < min_length:
        raise PasswordRejected(f"Use at least {min_length} characters.", field)
    if length > MAX_LENGTH:
        raise PasswordRejected(f"Use at most {MAX_LENGTH} characters.", field)
    key = comparison_key(password)
    if is_common(key):
        raise PasswordRejected("This password is too common; choose another.", field)
    if key == comparison_key(email):
        raise PasswordRejected("The password must not be your email address.", field)
