"""Paths users give: checked before the work starts, outputs written atomically, never over an input.

Every command that writes calls these first, so a typo in ``--out`` or an unwritable
``--log_dir`` costs a second, not the hours of work done before the first write:

* :func:`check_output_dir` - the folder exists (or can be created) and a file can be created
  in it; nothing is created by the check itself.
* :func:`check_output_file` - the same for a file's folder; the file is not a folder, not a
  symlink or special file (FIFO, device, socket), its name fits the file system, and it is
  not one of the command's inputs (also through a symlink or a hard link).
* :func:`unreadable_folders` - folders a search cannot enter (a permission problem is reported
  as such, not as "no files found").
* :func:`walk_files` - the files under a folder by the one symlink rule of every command that
  walks folders (links followed inside the folder only, each file listed once).
* :func:`atomic_output` - write to a short unique temporary name next to the target (so any
  legal target name works), then rename; the temporary is removed on any failure, so no
  ``*.tmp`` is ever left behind; a symlink or special file is never replaced.
* :func:`write_bytes_atomic` - the same for bytes in memory, through ``<name>.tmp`` and plain
  ``os.write`` calls (prepare's outputs: a full disk is an ``OSError`` naming the file).
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from vcmr.errors import VcmrError


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _probe_write(folder: Path, what: str) -> None:
    """Create and delete one file in ``folder``: the only test that also sees read-only
    mounts, ACLs and quotas (``os.access`` is blind to some of them)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on the disk",
                  errno.EDQUOT: "disk quota exceeded"}.get(e.errno, e.strerror or type(e).__name__)
        raise VcmrError(f"{what}: cannot write in {str(folder)!r} ({reason}); choose a folder you "
                        f"can write to, or fix its permissions") from None


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` is (or can become) a folder this process can write in; else a VcmrError
    naming ``what`` (e.g. ``"--log_dir 'runs'"``) and the fix."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VcmrError(f"{what}: {str(path)!r} is a file, not a folder; give a folder path "
                        f"(or move the file away)")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise VcmrError(f"{what}: cannot create folder {str(path)!r} because {str(base)!r} is a "
                        f"file, not a folder; choose another path")
    _probe_write(base, what)
    return path


def unreadable_folders(root: str | Path, limit: int = 5) -> list[str]:
    """Up to ``limit`` folders at or under ``root`` that cannot be listed (permission denied
    and the like); ``Path.rglob`` skips them silently."""
    found: list[str] = []

    def note(err: OSError) -> None:
        if len(found) < limit:
            found.append(f"{err.filename} ({err.strerror})")
    for _ in os.walk(root, onerror=note, followlinks=False):
        if len(found) >= limit:
            break
    return found


@dataclass
class FolderWalk:
    """What :func:`walk_files` found: ``files`` (sorted), ``skipped`` ((link, reason) of each
    symbolic link not followed) and ``unreadable`` (folders that could not be listed)."""
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def skipped_note(self, root: str | Path) -> str | None:
        """One line for the user about the links not followed (None when there were none)."""
        if not self.skipped:
            return None
        link, why = self.skipped[0]
        return (f"{str(root)!r}: {len(self.skipped)} symbolic link(s) not followed (links are "
                f"followed only to files and folders inside the folder given), "
                f"e.g. {link!r}: {why}; to use files elsewhere, give them or their real folder "
                f"as the input, or copy them in")


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def walk_files(root: str | Path) -> FolderWalk:
    """Every file under ``root``, by the one symlink rule of every command that walks folders:

    * a symbolic link (to a file or a folder) whose real path (``os.path.realpath``) lies
      inside the real path of ``root`` is followed: what it leads to is in the folder anyway,
      so it is listed once, under its real path (never twice through the link);
    * a link that leads outside the folder (``..``, an absolute path elsewhere), a broken link
      and a link to a folder that holds it (a loop) are not followed;
    * every link not followed is in ``skipped`` with its reason (callers report them once).

    The walk itself never descends through a link, so no loop can make it run for ever.
    """
    root = Path(root)
    root_real = os.path.realpath(root)
    out = FolderWalk()

    def fail(err: OSError) -> None:
        out.unreadable.append(f"{err.filename} ({err.strerror})")
    for d, dirs, names in os.walk(root, onerror=fail, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + names):
            p = os.path.join(d, name)
            if os.path.islink(p):
                reason = _link_reason(p, root_real)
                if reason:
                    out.skipped.append((p, reason))
            elif name in names and os.path.isfile(p):
                out.files.append(Path(p))
    out.files.sort()
    return out


def _link_reason(link: str, root_real: str) -> str | None:
    """Why ``link`` is not followed (None: it leads to a file or folder inside the folder)."""
    real = os.path.realpath(link)
    if not os.path.exists(real):
        return f"broken link (to {os.readlink(link)!r})"
    if not _inside(real, root_real):
        return f"leads outside the folder (to {real!r})"
    if os.path.isdir(real) and _inside(os.path.realpath(os.path.dirname(link)), real):
        return f"a loop (leads to {real!r}, which holds the link)"
    return None


def check_input_dir(path: str | Path, what: str) -> Path:
    """``path`` is a folder this process can list; else a VcmrError naming ``what``."""
    path = Path(path)
    if not path.is_dir():
        raise VcmrError(f"{what}: {str(path)!r} does not exist or is not a folder")
    try:
        os.listdir(path)
    except OSError as e:
        raise VcmrError(f"{what}: cannot read folder {str(path)!r} ({e.strerror}); fix its "
                        f"permissions (e.g. chmod u+rx) or run as a user who can read it") from None
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (symlinks, hard links, ``..`` included)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(out: str | Path, inputs: Iterable[str | Path | None], what: str) -> None:
    """Refuse to write ``out`` when it is one of ``inputs`` (data loss otherwise)."""
    for src in inputs:
        if src and same_file(out, src):
            raise VcmrError(f"{what}: {str(out)!r} is also an input of this command ({str(src)!r}); "
                            f"writing it would destroy the input. Give another output path")


_SPECIAL = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def refuse_special(out: str | Path, what: str) -> None:
    """Refuse an output path that is a symlink or a special file: writing the result would
    replace it with a regular file (``--out /dev/null`` as root would replace the system's)."""
    try:
        mode = os.lstat(out).st_mode
    except OSError:
        return  # nothing there (or not reachable: the folder checks report that)
    if stat.S_ISLNK(mode):
        raise VcmrError(f"{what}: {str(out)!r} is a symbolic link (to {os.readlink(out)!r}); vcmr "
                        f"does not replace links: give the target's own path or another name")
    kind = next((name for test, name in _SPECIAL if test(mode)), None)
    if kind:
        raise VcmrError(f"{what}: {str(out)!r} is {kind}, not a regular file; vcmr writes its "
                        f"output to a temporary file and renames it, which would replace it. "
                        f"Give a regular file name")


def check_name_length(path: Path, what: str) -> None:
    """Each name in ``path`` that does not exist yet fits its file system's NAME_MAX."""
    base = _nearest_existing(path)
    try:
        name_max = os.pathconf(base if base.is_dir() else base.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        return  # unknown limit: the write reports it
    new = path.absolute().relative_to(base).parts if base != path.absolute() else ()
    for name in new or (path.name,):
        size = len(os.fsencode(name))
        if name_max and size > name_max:
            raise VcmrError(f"{what}: the name {name[:60]!r}... is {size} bytes; this file system "
                            f"allows at most {name_max} bytes per name. Give a shorter name")


def check_output_file(out: str | Path, what: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``out`` can be written: not a folder, not a symlink or special file, a name the file
    system accepts, its folder writable, not one of ``inputs``."""
    raw, out = os.fspath(out), Path(out)
    check_name_length(out, what)  # first: a too-long name makes stat() itself fail
    if out.is_dir() or raw.endswith(os.sep):
        raise VcmrError(f"{what}: {str(out)!r} is a folder; give a file name inside it, e.g. "
                        f"{str(out / ('output' + (out.suffix or '')))!r}")
    refuse_overwrite(out, inputs, what)
    refuse_special(out, what)
    check_output_dir(out.parent, what)
    return out


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(out: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``out``; rename it to ``out`` when the block succeeds,
    delete it when the block (or the rename) fails. The temporary name is short and fixed in
    length (``.vcmr-XXXXXXXX.tmp``), so every name the file system allows for ``out`` works; a
    symlink or special file at ``out`` is refused before the block and again before the rename."""
    out = Path(out)
    refuse_special(out, f"output {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".vcmr-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        refuse_special(out, f"output {str(out)!r}")  # appeared while the block ran
        # mkstemp makes 0600, and some writers (safetensors) replace the file with their own
        # 0600 one: set the usual mode (0666 less the umask) on what the block wrote
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, then rename (never half-written).

    Plain ``os.write`` calls, so a full disk surfaces as ``OSError(ENOSPC)`` naming the file
    (libsndfile reports it as "System error."), and the temporary is removed on any failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise


def check_training_paths(cfg, *input_keys: str) -> None:
    """Before training: ``log_dir`` writable; when ``experiment_version`` is fixed, the run's
    ``best.ckpt`` / ``last.ckpt`` must not be one of the checkpoints named by ``input_keys``
    (they would be overwritten). Resuming in place (``ckpt_path`` = this run's ``last.ckpt``)
    stays allowed: that is the same run going on."""
    check_output_dir(cfg.log_dir, f"log_dir {cfg.log_dir!r}")
    if cfg.experiment_version is None:
        return  # a new version_N folder: nothing there can be an input
    ckpt_dir = Path(cfg.log_dir) / cfg.experiment_name / str(cfg.experiment_version) / "checkpoints"
    for key in input_keys:
        src = getattr(cfg, key, None)
        if src and str(src).lower() != "none":
            for out in (ckpt_dir / "best.ckpt", ckpt_dir / "last.ckpt"):
                refuse_overwrite(out, [src], f"{key} (this run writes {out})")
