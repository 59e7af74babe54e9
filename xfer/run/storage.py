"""A write the disk refuses (full, read-only, no permission, a size limit) as one message naming the file.

Every writer of a run (checkpoints, ``metrics.jsonl``, TensorBoard events, ``run.json``) writes inside
``with writing(path):``, which turns an ``OSError`` into :class:`WriteFailed` ("no space left on device
while writing runs/x/metrics.jsonl"); the runner adds the last good checkpoint and how to continue.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xfer.errors import XferError

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (a file-size limit was reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
DISK_ERRNOS = frozenset(_REASONS)
_FIXES = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
          errno.EFBIG: "raise the file-size limit (ulimit -f)"}


def fix_for(code: int | None, directory: Path | str) -> str:
    """What to do about a refused write: free space, raise the size limit, or make ``directory`` writable."""
    return _FIXES.get(code or 0, f"make {directory} writable")


class WriteFailed(XferError):
    """Writing ``path`` failed with ``reason`` (the OS error in words)."""

    def __init__(self, path: Path | str, error: OSError) -> None:
        self.path, self.errno = str(path), error.errno
        self.reason = _REASONS.get(error.errno or 0) or (
            os.strerror(error.errno).lower() if error.errno else str(error))
        super().__init__(f"{self.reason} while writing {self.path}",
                         hint=f"{fix_for(error.errno, 'the directory')} or write elsewhere, then try again")


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Re-raise an ``OSError`` of the enclosed writes as :class:`WriteFailed` naming ``path``."""
    try:
        yield
    except OSError as err:
        raise WriteFailed(path, err) from err
