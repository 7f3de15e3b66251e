"""Each rank reads only its rows: row ranges of a ``.npy`` file, an IDX file or a CSV file.

Rank ``r`` of ``N`` gets rows ``[r*n//N ...)`` in the even split of
:func:`row_range` (the first ``n % N`` ranks get one row more), so the
shards in rank order are the file's rows in order: what
``fit(..., distributed="sharded")`` expects.

- ``.npy`` (:func:`read_npy`): a memory map; only the shard's pages are read
  from disk, when training first touches them;
- IDX (:func:`read_idx`): a memory map past the header for a raw file; a
  ``.gz`` file cannot be mapped, so it is streamed and only the shard kept;
- CSV (:func:`read_csv`): the file is cut into ``N`` byte ranges; a rank
  reads the lines that start in its range (plus the first line, to know the
  header), so it never reads another rank's rows. One row per line: a quoted
  cell holding a line break is not supported here.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import struct

import numpy as np

from ..data.idx import IDX_TYPES, MAX_DIMS
from ..data.tabular import has_header
from ..errors import DataError
from .comm import world as make_world

DELIMITERS = (",", ";", "\t")


def _rank_size(world):
    if world is None:
        world = make_world(True)
    return (0, 1) if world is None else (world.rank, world.size)


def row_range(n, world=None):
    """``(start, stop)``: this rank's rows of ``n`` (None: ``MPI.COMM_WORLD``; a world of one gets them all)."""
    rank, size = _rank_size(world)
    q, extra = divmod(int(n), size)
    start = rank * q + min(rank, extra)
    return start, start + q + (rank < extra)


def read_npy(path, world=None):
    """This rank's rows of a ``.npy`` file, as a read-only memory map (nothing is read until used)."""
    spath = os.fspath(path)
    try:
        full = np.load(spath, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f".npy file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path on every machine (each rank opens it)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{spath} is not a .npy array file", expected="a file written by numpy.save", got=str(exc),
                        fix="save the array with numpy.save(path, X)") from None
    if full.ndim < 1:
        raise DataError(f"{spath} holds a single value", expected="an array of rows", got=f"shape {full.shape}",
                        fix="save the rows as one array (n, features)")
    start, stop = row_range(full.shape[0], world)
    return full[start:stop]


def read_idx(path, world=None):
    """This rank's rows (first axis) of an IDX file, native-endian; a raw file is memory-mapped."""
    spath = os.fspath(path)
    try:
        with open(spath, "rb") as fh:
            compressed = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh, mode="rb") if compressed else fh
            header = stream.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in IDX_TYPES or not 1 <= header[3] <= MAX_DIMS:
                raise DataError(f"{spath} is not a valid IDX file: the magic number is wrong",
                                expected="00 00 <type 08/09/0B/0C/0D/0E> <ndim>", got=header.hex(" "),
                                fix="pass an IDX file such as MNIST's train-images-idx3-ubyte(.gz)")
            ndim, dtype = header[3], IDX_TYPES[header[2]]
            dims = struct.unpack(f">{ndim}I", stream.read(4 * ndim))
            start, stop = row_range(dims[0], world)
            row_bytes = int(np.prod(dims[1:], dtype=np.int64)) * dtype.itemsize
            if compressed:  # no seeking in gzip: stream past the rows before ours, keep ours
                _skip(stream, start * row_bytes)
                data = stream.read((stop - start) * row_bytes)
                rows = np.frombuffer(data, dtype=dtype)
            else:
                rows = np.memmap(spath, dtype=dtype, mode="r", offset=4 + 4 * ndim + start * row_bytes,
                                 shape=((stop - start) * row_bytes // dtype.itemsize,)) if stop > start else np.empty(0, dtype)
    except FileNotFoundError:
        raise DataError(f"IDX file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path on every machine (each rank opens it)") from None
    except (OSError, EOFError, struct.error) as exc:
        raise DataError(f"cannot read IDX file {spath}", expected="a complete IDX file", got=str(exc),
                        fix="re-download or rewrite the file") from None
    if rows.size != (stop - start) * row_bytes // dtype.itemsize:
        raise DataError(f"{spath} is not a valid IDX file: the data are truncated",
                        expected=f"rows {start}..{stop - 1} of shape {dims[1:]}", got=f"{rows.size} values",
                        fix="re-download or rewrite the file")
    return np.asarray(rows.reshape((stop - start, *dims[1:])), dtype=dtype.newbyteorder("="))


def _skip(stream, n):
    while n > 0:
        chunk = stream.read(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the file ends before this rank's rows")
        n -= len(chunk)


def read_csv(path, world=None, delimiter=None):
    """This rank's rows of a CSV file: ``(header, cells)``.

    ``header`` is the list of column names when the first line is a header
    (judged the same way as ``dialnet train``), else None; ``cells`` is an
    object array ``(rows, columns)`` of stripped text cells, blank lines left
    out. The file is split into byte ranges, one per rank; a rank parses the
    lines that start in its range.
    """
    spath = os.fspath(path)
    rank, size = _rank_size(world)
    try:
        total = os.path.getsize(spath)
        with open(spath, "rb") as fh:
            first = fh.readline()
            sample = first + fh.read(64 * 1024)
            start, stop = (total * rank) // size, (total * (rank + 1)) // size
            fh.seek(max(start - 1, 0))
            if start > 0 and fh.read(1) != b"\n":
                fh.readline()  # a line that started before our range is the previous rank's
            lines = []
            while fh.tell() < stop or (start == 0 and fh.tell() == 0):
                where = fh.tell()
                line = fh.readline()
                if not line:
                    break
                if where == 0:
                    continue  # the first line: the header, or rank 0's first row (added back below)
                lines.append(line)
    except FileNotFoundError:
        raise DataError(f"CSV file {spath} does not exist", expected="an existing file", got=spath,
                        fix="check the path on every machine (each rank opens it)") from None
    except OSError as exc:
        raise DataError(f"cannot read CSV file {spath}", expected="a readable CSV file", got=str(exc),
                        fix="check the path and its permissions") from None
    try:
        text = sample.decode("utf-8-sig")
        body = b"".join(lines).decode("utf-8")
        head = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{spath} is not a text CSV file", expected="UTF-8 text with comma-separated values",
                        got="bytes that are not UTF-8 text", fix="save it as UTF-8 CSV") from None
    delimiter = delimiter or max(DELIMITERS, key=lambda d: (text.splitlines()[0].count(d) if text else 0, d == ","))

    def parse(text):
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]

    first_rows = [r for r in parse(text) if any(r)][:201]  # as many rows as dialnet train looks at
    header = first_rows[0] if first_rows and has_header(first_rows) else None
    rows = [r for r in parse(body) if any(r)]
    if header is None and rank == 0:
        rows = [r for r in parse(head) if any(r)] + rows
    width = len(header) if header is not None else (len(first_rows[0]) if first_rows else 0)
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise DataError(f"a row of {spath} has {len(rows[bad])} cells", expected=f"{width} cells like the first row",
                        got=f"{rows[bad][:6]}", fix="give every row the same number of columns")
    cells = np.empty((len(rows), width), dtype=object)
    for i, r in enumerate(rows):
        cells[i] = r
    return header, cells
