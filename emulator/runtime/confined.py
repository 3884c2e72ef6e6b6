"""smlocal's own reads and writes in a host's /opt/ml tree, confined to that tree.

Two kinds of hostile input reach these paths. Names that come from S3 (object keys under a
prefix, manifest entries, checkpoint keys, model data keys) are joined onto local folders: a `..`
step, an empty step (`a//b`) or an absolute entry would land outside, so `relative_path` refuses
them with the step it found. And a container owns its tree while it runs: whatever smlocal opens
there afterwards (files to upload, the failure file, the next Pipe-mode FIFO) may have been
swapped for a link to a host file, or for a FIFO that blocks forever. So every such open walks
down from the tree's root one step at a time with O_NOFOLLOW, and checks with fstat that it got
the kind of file it expected, on the descriptor it will read or write (no check-then-open race).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class UnsafeName(ValueError):
    """A name from S3 that would leave its folder; `step` is what gives it away."""

    def __init__(self, name: str, step: str):
        super().__init__(f"{name!r} has an illegal char sub-sequence {step!r} in it")
        self.name, self.step = name, step


class NotRegular(OSError):
    """What smlocal meant to open is a link, a FIFO, a device or a folder, or it climbs through a link.
    Its message says which (no errno: nothing failed, smlocal refused)."""


def relative_path(name: str) -> str:
    """`name` as a path that stays inside whatever folder it is joined to, or UnsafeName.

    Absolute names and `..` steps are refused; so are empty steps, as SageMaker refuses `//` in a key."""
    if name.startswith("/"):
        raise UnsafeName(name, "/")
    if "\0" in name:  # no file name can hold it
        raise UnsafeName(name, "\0")
    parts = name.split("/")
    if "" in parts:
        raise UnsafeName(name, "//")
    if ".." in parts:
        raise UnsafeName(name, "..")
    kept = [p for p in parts if p != "."]
    if not kept:
        raise UnsafeName(name, name)
    return str(PurePosixPath(*kept))


def beneath(folder: Path, name: str) -> Path:
    """folder/name, for a name that came from S3 (see `relative_path`)."""
    return folder / relative_path(name)


def open_directory(root: Path, relative: str = "") -> int:
    """A descriptor of root/relative, reached without following any link below `root`."""
    fd = os.open(root, _DIRECTORY)
    for part in PurePosixPath(relative).parts:
        try:
            child = os.open(part, _DIRECTORY, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotRegular(f"{relative} is not a folder reached without links") from None
            raise
        finally:
            os.close(fd)
        fd = child
    return fd


def open_regular(root: Path, relative: str):
    """root/relative opened for reading as a binary file object, only if it is a regular file
    reached without following links; else NotRegular (or FileNotFoundError)."""
    path = PurePosixPath(relative)
    folder = open_directory(root, str(path.parent))
    try:
        fd = os.open(path.name, _READ, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(f"{relative} is a symbolic link") from None
        raise
    finally:
        os.close(folder)
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise NotRegular(f"{relative} is {_describe(kind)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def regular_files(root: Path, relative: str) -> tuple[list[str], list[str]]:
    """The regular files under root/relative (paths relative to it, sorted), and what was skipped
    there: links (to files or folders: never followed), FIFOs, sockets, devices. A `relative`
    folder that is itself a link (or climbs through one) is skipped whole, as "."; a missing one
    yields nothing."""
    try:
        top = open_directory(root, relative)
    except NotRegular:
        return [], ["."]
    except FileNotFoundError:
        return [], []
    files, skipped = [], []
    try:
        for folder, dirs, names, dir_fd in os.fwalk(".", dir_fd=top):
            for name in list(dirs) + names:
                try:
                    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue  # gone since it was listed
                if stat.S_ISDIR(mode):
                    continue
                if name in dirs:
                    dirs.remove(name)  # a link to a folder: never walked (fwalk checks too)
                (files if stat.S_ISREG(mode) else skipped).append(os.path.normpath(os.path.join(folder, name)))
    finally:
        os.close(top)
    return sorted(files), sorted(skipped)


def open_fifo_for_writing(folder: int, name: str) -> int:
    """The FIFO `name` in the folder `folder` (a descriptor) opened for writing without blocking,
    refusing a link or anything that is not a FIFO. ENXIO while nobody reads, as os.open says."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(f"{name} is no longer the FIFO smlocal made: it is a symbolic link") from None
        raise
    kind = os.fstat(fd).st_mode
    if not stat.S_ISFIFO(kind):
        os.close(fd)
        raise NotRegular(f"{name} is no longer the FIFO smlocal made: it is {_describe(kind)}")
    return fd


def _describe(mode: int) -> str:
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISLNK, "a symbolic link"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return words
    return "not a regular file"
