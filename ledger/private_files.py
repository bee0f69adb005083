"""Private-key files are read only when nobody but their owner can reach them, as ssh insists.

:func:`check_private_file` is called before any private key is read: a keystore
(``ledger.keys.load_keystore``), a TLS client key (``ledger.tls.client_tls_context``) and the
TLS server keys the oracle's and the API's settings name. A file whose mode grants group or others
any access (``mode & 0o077``) is refused with :class:`ledger.errors.InsecureKeyFile`, naming the file
and the fix; the key is never read, so it never reaches memory it should not.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ledger.errors import InsecureKeyFile

__all__ = ["PRIVATE_MODE_MASK", "check_private_file"]

#: The permission bits a private-key file must not have (group and others: read, write, execute).
PRIVATE_MODE_MASK = 0o077


def check_private_file(path: str | os.PathLike[str], what: str = "private key file") -> None:
    """Refuse ``path`` (after symbolic links, as ``open`` would follow them) when group or others
    have any permission on it. A missing or unreadable file passes: reading it reports that."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & PRIVATE_MODE_MASK:
        raise InsecureKeyFile(
            f"{what} {Path(path)} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"a private key must be readable by its owner only: run `chmod 600 {Path(path)}`"
        )
