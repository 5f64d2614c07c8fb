"""The LMDB environment under a store folder: opening it safely, growing its map, swapping in a compacted file,
and turning LMDB's failures into one readable StoreError.

Rules (docs/store.md):
- One `SharedEnv` per folder per process; every Store object of that folder uses it, so a reopen reaches them all.
- A transaction runs under the in-process gate held *shared*; remapping (map growth, adopting another process's
  growth) and reopening after a compaction hold it *exclusive* (LMDB unmaps the file: no transaction of this
  process may be reading it then).
- `reid.lock` in the folder is flock'ed *shared* while this process opens the env or has a write transaction open,
  and *exclusive* while a compaction copies the store and renames the copy over data.mdb. So no writer can commit
  into a file that is being replaced, and each writer checks data.mdb's inode after taking the lock: a changed
  inode (another process compacted) means reopen first. Readers check the inode too and reopen when it changed;
  a read transaction already open on the old file stays consistent (the old inode lives until it is closed).
- The compacted copy comes with a fresh lock.mdb: LMDB's lock file records the last transaction id, which the
  copy does not share.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import struct
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lmdb

from reid_core.errors import StoreError

MIN_MAP = 64 << 20
# The map is address space, not disk: it only has to cover the file. A cap keeps a runaway writer from taking all of
# it; $REID_STORE_MAP_MAX lowers it (tests use a tiny one to provoke "store full").
DEFAULT_MAP_MAX = 1 << 40
META_MAGIC = 0xBEEFC0DE
LOCK_NAME = "reid.lock"
DAMAGED_HINT = "run `reid store check` to see what is damaged, and restore the folder from a backup"


def map_max() -> int:
    return int(os.environ.get("REID_STORE_MAP_MAX") or DEFAULT_MAP_MAX)


# ---- reading LMDB's meta pages with plain file IO ------------------------------------------------------------------
@dataclass(frozen=True)
class MetaInfo:
    page_size: int
    last_page: int
    txn_id: int
    map_size: int

    @property
    def needed_bytes(self) -> int:
        return (self.last_page + 1) * self.page_size


def _parse_meta(page: bytes) -> MetaInfo | None:
    # MDB_page header (16 bytes), then MDB_meta: magic u32, version u32, address ptr, mapsize size_t,
    # two MDB_db of 48 bytes (the free db's first u32 holds the page size), last_pg, txnid (LMDB 0.9, 64-bit).
    if len(page) < 152:
        return None
    magic, version = struct.unpack_from("<II", page, 16)
    if magic != META_MAGIC or version != 1:
        return None
    (mapsize,) = struct.unpack_from("<Q", page, 32)
    (psize,) = struct.unpack_from("<I", page, 40)
    last, txnid = struct.unpack_from("<QQ", page, 136)
    if psize < 512 or psize > 1 << 16 or psize & (psize - 1):
        return None
    return MetaInfo(psize, last, txnid, mapsize)


def read_meta(data_file: Path) -> MetaInfo | None:
    """The newest valid meta page of data.mdb, or None for a missing/empty file. StoreError if the file cannot be
    an intact LMDB store: both meta pages unreadable, or the file shorter than the pages its meta page counts
    (a truncated file: mapping it would end in SIGBUS on the first read past its end)."""
    try:
        size = data_file.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(data_file, "rb") as fh:
        first = fh.read(4096)
        m0 = _parse_meta(first)
        psize = m0.page_size if m0 else 4096
        fh.seek(psize)
        m1 = _parse_meta(fh.read(psize))
    metas = [m for m in (m0, m1) if m is not None]
    if not metas:
        raise StoreError(f"store damaged: {data_file} is not an LMDB store (no valid meta page); {DAMAGED_HINT}")
    meta = max(metas, key=lambda m: m.txn_id)
    if size < meta.needed_bytes:
        raise StoreError(f"store damaged: {data_file} is {size:,} bytes but its meta page counts "
                         f"{meta.needed_bytes:,} (the file was truncated); {DAMAGED_HINT}")
    return meta


# ---- error translation ---------------------------------------------------------------------------------------------
_DAMAGE = (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError, lmdb.VersionMismatchError,
           lmdb.PanicError, lmdb.BadTxnError, lmdb.BadValsizeError, lmdb.BadChecksumError, lmdb.IncompatibleError)
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class StoreFull(StoreError):
    """The map reached $REID_STORE_MAP_MAX (write_retrying grows it below that)."""


def translate(e: BaseException, path: Path, env_map: int | None = None) -> StoreError:
    """One line a user can act on, for an LMDB or OS failure on the store at `path`."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, lmdb.MapFullError):
        return StoreFull(f"store full: {path} reached its map limit of {env_map or map_max():,} bytes "
                          f"($REID_STORE_MAP_MAX); raise the limit or delete data (`reid gallery delete`, "
                          f"`reid store compact`)")
    if isinstance(e, _DAMAGE):
        return StoreError(f"store damaged: {path}: {text}; {DAMAGED_HINT}")
    if isinstance(e, lmdb.ReadersFullError):
        return StoreError(f"store busy: too many processes and threads are reading {path}; try again")
    code = getattr(e, "errno", None)
    lowered = text.lower()
    disky = isinstance(e, lmdb.DiskError) or code in _DISK_ERRNOS or any(
        w in lowered for w in ("no space", "input/output error", "file too large", "quota"))
    if disky:
        try:
            free = free_bytes(path)
        except OSError:
            free = -1
        import resource

        fsize = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if "file too large" in lowered or code == errno.EFBIG or fsize != resource.RLIM_INFINITY:
            # a write cut short by RLIMIT_FSIZE reaches LMDB as a short write, which it reports as EIO
            why = f"the file size limit (ulimit -f, {fsize:,} bytes) is reached"
        elif free >= 0 and free < 16 << 20 or "no space" in lowered or code in (errno.ENOSPC, errno.EDQUOT):
            why = f"the disk is full ({max(free, 0):,} bytes free)"
        else:
            why = f"the disk reported an I/O error ({text})"
        return StoreError(f"cannot write the store {path}: {why}; nothing of this change was saved. Free some "
                          f"space and run the command again")
    if isinstance(e, (lmdb.MemoryError, MemoryError)) or code == errno.ENOMEM:
        return StoreError(f"cannot map the store {path}: out of address space or memory ({text}); check "
                          f"`ulimit -v`, or lower $REID_STORE_MAP_MAX")
    if isinstance(e, PermissionError) or code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"cannot open the store {path}: permission denied or read-only ({text})")
    return StoreError(f"store error on {path}: {text}")


# ---- the in-process gate -------------------------------------------------------------------------------------------
class _Gate:
    """Many transactions at once, or one remap/reopen alone. Reader-preferring so that a thread nesting a second
    transaction inside its first never waits on a queued remap (which would wait on it: deadlock)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._mine = threading.local()

    def depth(self) -> int:
        return getattr(self._mine, "n", 0)

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        self._mine.n = self.depth() + 1
        try:
            yield
        finally:
            self._mine.n = self.depth() - 1
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self.depth():
            raise StoreError("internal: the store cannot be remapped from inside one of its own transactions")
        with self._cond:
            while self._exclusive or self._shared:
                self._cond.wait()
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


# ---- the shared environment ----------------------------------------------------------------------------------------
class SharedEnv:
    """The open LMDB environment of one store folder in this process (see the module docstring for the rules)."""

    def __init__(self, path: Path, db_names: tuple[str, ...]):
        self.path = path
        self.db_names = db_names
        self.pid = os.getpid()
        self.gate = _Gate()
        self._lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        self._writers = 0
        self._writers_lock = threading.Lock()
        self.env: lmdb.Environment  # set by self._open() below: a SharedEnv always holds an open environment
        self.dbs: dict[str, lmdb._Database] = {}
        self.inode: tuple[int, int] | None = None
        self.closed = True
        self._flock(fcntl.LOCK_SH)
        try:
            self._open()
        finally:
            self._flock(fcntl.LOCK_UN)

    # -- locking
    def _flock(self, how: int) -> None:
        fcntl.flock(self._lock_fd, how)

    @contextmanager
    def _writer(self) -> Iterator[None]:
        with self._writers_lock:
            if self._writers == 0:
                self._flock(fcntl.LOCK_SH)
            self._writers += 1
        try:
            yield
        finally:
            with self._writers_lock:
                self._writers -= 1
                if self._writers == 0:
                    self._flock(fcntl.LOCK_UN)

    # -- opening
    def _data_inode(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path / "data.mdb")
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _open(self) -> None:
        meta = read_meta(self.path / "data.mdb")
        used = meta.needed_bytes if meta else 0
        size = max(used, min(max(MIN_MAP, 2 * used), map_max()))  # over the cap still opens; it cannot grow
        try:
            env = lmdb.open(str(self.path), map_size=size, max_dbs=len(self.db_names) + 2, subdir=True,
                            max_readers=256)
            dbs = {name: env.open_db(name.encode()) for name in self.db_names}
        except lmdb.Error as e:
            raise translate(e, self.path) from None
        self.env, self.dbs, self.inode, self.closed = env, dbs, self._data_inode(), False

    def _reopen_if_swapped(self) -> None:
        if self._data_inode() == self.inode and not self.closed:
            return
        with self.gate.exclusive():  # no transaction of this process is open, so none holds the flock either
            if self._data_inode() == self.inode and not self.closed:
                return
            self._flock(fcntl.LOCK_SH)
            try:
                self._close()
                self._open()
            finally:
                self._flock(fcntl.LOCK_UN)

    def _close(self) -> None:
        if not self.closed:
            self.env.close()
            self.closed = True

    def map_size(self) -> int:
        with self.gate.shared():
            return self.env.info()["map_size"]

    def _grow(self, seen_size: int) -> None:
        with self.gate.exclusive():
            current = self.env.info()["map_size"]
            if current != seen_size:  # another thread grew it meanwhile
                return
            target = min(max(2 * current, MIN_MAP), map_max())
            if target <= current:
                raise translate(lmdb.MapFullError("map full"), self.path, current)
            try:
                self.env.set_mapsize(target)
            except lmdb.Error as e:
                raise translate(e, self.path) from None

    def _adopt_resize(self) -> None:
        with self.gate.exclusive():
            self.env.set_mapsize(0)  # LMDB: 0 adopts the size another process set

    def _headroom(self) -> None:
        """Grow the map before a write once the file fills half of it, so MapFullError stays the exception."""
        with self.gate.shared():
            info, stat = self.env.info(), self.env.stat()
        used = (info["last_pgno"] + 1) * stat["psize"]
        if used * 2 > info["map_size"] and info["map_size"] < map_max():
            self._grow(info["map_size"])

    # -- transactions
    @contextmanager
    def transaction(self, write: bool) -> Iterator[lmdb.Transaction]:
        top = self.gate.depth() == 0
        if top:
            self._reopen_if_swapped()
            if write:
                self._headroom()
        for _ in range(4):
            with self.gate.shared(), (self._writer() if write else _nothing()):
                if write and self._data_inode() != self.inode:
                    raise StoreError(f"the store {self.path} was compacted by another process during this "
                                     "operation; run it again")
                try:
                    txn = self.env.begin(write=write)
                except lmdb.MapResizedError:
                    if not top:
                        raise StoreError(f"the store {self.path} grew in another process during this "
                                         "operation; run it again") from None
                    txn = None
                except lmdb.Error as e:
                    raise translate(e, self.path) from None
                if txn is not None:
                    try:
                        with txn:
                            yield txn
                    except lmdb.Error as e:
                        raise translate(e, self.path, self.env.info()["map_size"]) from None
                    except ValueError as e:  # json and utf-8 decoding of a damaged record
                        if type(e).__name__ not in ("JSONDecodeError", "UnicodeDecodeError"):
                            raise
                        raise StoreError(f"store damaged: {self.path}: a record does not decode ({e}); "
                                         f"{DAMAGED_HINT}") from None
                    return
            self._adopt_resize()
        raise StoreError(f"store error on {self.path}: its map kept changing size; try again")

    def write_retrying(self, fn):
        """fn(txn) in one write transaction; if the map fills, grow it and run fn again on a fresh transaction."""
        while True:
            seen = self.map_size()
            try:
                with self.transaction(write=True) as txn:
                    return fn(txn)
            except StoreFull:
                if seen >= map_max() or self.gate.depth():
                    raise
                self._grow(seen)

    # -- compaction
    def compact(self) -> tuple[int, int]:
        """Rebuild the store into a fresh file and rename it over data.mdb. Returns (bytes before, bytes after).

        A logical rebuild (every key put anew, in order, into a new environment) rather than LMDB's compacting
        copy: that copy writes whole live pages, free space included, and a deleted value that sat in a page
        which still holds live entries keeps its bytes in that page's free space."""
        data = self.path / "data.mdb"
        with self.gate.exclusive():
            self._flock(fcntl.LOCK_EX)
            try:
                if self._data_inode() != self.inode:  # compacted elsewhere meanwhile: start from that file
                    self._close()
                    self._open()
                before = data.stat().st_size
                tmp = self.path / f".compact-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                tmp.mkdir()
                try:
                    self._rebuild(tmp)
                    fd = os.open(tmp / "data.mdb", os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    self._close()
                    os.replace(tmp / "data.mdb", data)
                    try:
                        os.unlink(self.path / "lock.mdb")
                    except FileNotFoundError:
                        pass
                    dfd = os.open(self.path, os.O_RDONLY)
                    try:
                        os.fsync(dfd)
                    finally:
                        os.close(dfd)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                    if self.closed:
                        self._open()
                return before, data.stat().st_size
            except lmdb.Error as e:
                raise translate(e, self.path) from None
            except OSError as e:
                raise translate(e, self.path) from None
            finally:
                self._flock(fcntl.LOCK_UN)

    def _rebuild(self, dest: Path) -> None:
        used = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        new = lmdb.open(str(dest), map_size=max(MIN_MAP, 2 * used), max_dbs=len(self.db_names) + 2, subdir=True,
                        lock=False, meminit=True)
        try:
            batch = 32 << 20  # commit every ~32 MiB: an LMDB write transaction keeps its dirty pages in memory
            with self.env.begin() as src:
                for name in self.db_names:
                    ndb = new.open_db(name.encode())
                    cur = src.cursor(db=self.dbs[name])
                    txn, size = new.begin(write=True), 0
                    for k, v in cur:
                        txn.put(k, v, db=ndb, append=True)
                        size += len(k) + len(v)
                        if size >= batch:
                            txn.commit()
                            txn, size = new.begin(write=True), 0
                    txn.commit()
            new.sync(True)
        finally:
            new.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


_envs: dict[str, SharedEnv] = {}
_envs_lock = threading.Lock()


def shared_env(path: Path, db_names: tuple[str, ...]) -> SharedEnv:
    key = str(path.resolve())
    with _envs_lock:
        env = _envs.get(key)
        if env is None or env.pid != os.getpid():  # after fork the parent's env is unusable: open afresh
            env = SharedEnv(Path(key), db_names)
            _envs[key] = env
        return env
