"""Verified downloads into a cache folder: fetched once, checked by SHA-256, written atomically.

A file is streamed into a temporary file in the cache folder while its
SHA-256 is computed; only when the length and the hash are right is it
renamed into place. A wrong hash, a short read or a dead server leave
nothing behind, and a cached file is re-checked before it is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from ..errors import DataError

CHUNK = 1 << 16
TIMEOUT_S = 60
MAX_DOWNLOAD_BYTES = 200 * 1024**2

# The official files and their published SHA-256 (and sizes). Mirrors are tried in order.
REMOTE = {
    "mnist": {
        "urls": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
            "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
            "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
            "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
        },
    },
    "fashion-mnist": {
        "urls": [
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
            "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
            "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
            "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148),
        },
    },
}


def cache_dir(path=None) -> str:
    """The cache folder: ``path``, else ``$DIALNET_CACHE``, else ``~/.cache/dialnet``."""
    folder = path or os.environ.get("DIALNET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dialnet")
    return os.fspath(folder)


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url, dest, sha256, size=None, timeout=TIMEOUT_S, max_bytes=MAX_DOWNLOAD_BYTES) -> str:
    """Download ``url`` to ``dest`` (atomically) and check its SHA-256.

    Parameters
    ----------
    url : str
        http(s) or file URL.
    dest : str
        Final path; its folder is created. Written only if the hash matches.
    sha256 : str
        Expected hex digest.
    size : int, optional
        Expected length in bytes (checked before the hash, for a clearer error).

    Raises
    ------
    DataError
        Server unreachable, HTTP error, truncated transfer, wrong size or hash.
    """
    import urllib.error  # noqa: PLC0415  (only when downloading)
    import urllib.request  # noqa: PLC0415
    from http.client import HTTPException  # noqa: PLC0415

    folder = os.path.dirname(os.path.abspath(dest))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    except OSError as exc:
        raise DataError(f"cannot write into the cache folder {folder}", expected="a writable folder",
                        got=exc.strerror or str(exc), fix="set DIALNET_CACHE to a writable folder") from None
    h = hashlib.sha256()
    received = 0
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    received += len(block)
                    if received > max_bytes:
                        raise DataError(f"the download from {url} is larger than expected", expected=f"at most {max_bytes:,} bytes",
                                        got=f"more than {max_bytes:,} bytes", fix="check the URL")
                    h.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            reason = getattr(exc, "reason", None) or exc
            raise DataError(f"cannot download {url}", expected="a reachable server", got=f"{type(exc).__name__}: {reason}",
                            fix="check the internet connection and try again, or copy the files into the cache folder "
                            f"{folder}") from None
        if declared is not None and declared.isdigit() and received != int(declared):
            raise DataError(f"the download from {url} was cut short", expected=f"{int(declared):,} bytes",
                            got=f"{received:,} bytes", fix="try again (nothing was kept)")
        if size is not None and received != size:
            raise DataError(f"the file from {url} has the wrong size", expected=f"{size:,} bytes", got=f"{received:,} bytes",
                            fix="try again later or from another mirror (nothing was kept)")
        digest = h.hexdigest()
        if digest != sha256.lower():
            raise DataError(f"the file from {url} failed its SHA-256 check", expected=sha256, got=digest,
                            fix="try again later or from another mirror (nothing was kept)")
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def fetch(name, cache=None, base_url=None, files=None, timeout=TIMEOUT_S) -> dict:
    """Make sure every file of data set ``name`` is in the cache; return ``{file name: path}``.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    cache : str, optional
        Cache folder (default: see :func:`cache_dir`); files go to ``cache/name/``.
    base_url : str, optional
        Download from here instead of the official mirrors (also
        ``$DIALNET_DATA_URL``); the file name is appended.
    files : dict, optional
        ``{file name: (sha256, size or None)}`` instead of the official table.
    """
    spec = REMOTE.get(name)
    if spec is None and files is None:
        raise DataError(f"no downloadable data set named {name!r}", expected="one of " + ", ".join(REMOTE), got=repr(name),
                        fix="use mnist or fashion-mnist")
    table = files if files is not None else spec["files"]
    base = base_url or os.environ.get("DIALNET_DATA_URL")
    bases = [base] if base else spec["urls"]
    folder = os.path.join(cache_dir(cache), name)
    paths = {}
    for fname, (digest, size) in table.items():
        dest = os.path.join(folder, fname)
        if os.path.isfile(dest):
            if sha256_of(dest) == digest:
                paths[fname] = dest
                continue
            os.unlink(dest)  # a stale or damaged copy: fetch it again
        errors = []
        for b in bases:
            url = b if b.endswith(fname) else b.rstrip("/") + "/" + fname
            try:
                paths[fname] = download(url, dest, digest, size, timeout=timeout)
                break
            except DataError as exc:
                errors.append(exc)
        else:
            last = errors[-1]
            if len(errors) > 1:
                raise DataError(f"cannot download {fname} of {name} from any of {len(bases)} mirrors ({last.what})",
                                expected=last.expected, got=last.got, fix=last.fix) from None
            raise last
    return paths
