"""Checking HDF5 global heap collections before HDF5 parses them.

Variable-length strings (h5py writes ``str`` attributes so, as fastMRI's ``acquisition`` and
``patient_id``, and a variable-length ``ismrmrd_header``) live in global heap collections. HDF5
trusts the sizes their objects declare: a damaged collection can make every reader loop forever
or read past the collection (found by random byte overwrites of fastMRI-format files). Reading
through :class:`HeapCheckingReader` checks each collection first (:func:`global_heap_problem`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

import h5py

#: HDF5 global heap collections (HDF5 File Format Specification, version 0-3, section III.E "Global Heap"):
#: signature, version, and the minimum collection size. Variable-length strings (h5py writes str attributes
#: so, as fastMRI's 'acquisition' and 'patient_id') live in them.
_HEAP_SIGNATURE, _HEAP_VERSION, _HEAP_MIN_SIZE = b"GCOL", 1, 4096
LENGTH_FORMATS = {2: "H", 4: "I", 8: "Q"}


def global_heap_problem(collection: bytes, length_size: int = 8) -> str | None:
    """What is wrong with one HDF5 global heap collection, or None.

    Walks its objects as HDF5's ``H5HG__cache_heap_deserialize`` does: each object header is a
    2-byte index, 2-byte reference count, 4 reserved bytes and the object's size (``length_size``
    bytes); an object (index > 0) takes its header plus its size rounded up to 8 bytes; the free
    space (index 0) takes its size, header included. HDF5 does not check these sizes: an object
    that takes no bytes makes it loop forever (a file that hangs every reader), one past the
    collection's end makes it read outside it.

    Args:
        collection: the whole collection, from its signature to its declared size.
        length_size: the file's "size of lengths" (8 unless the file was made otherwise).
    """
    header_size = 8 + length_size
    object_header = struct.Struct("<HHI" + LENGTH_FORMATS[length_size])
    end, position = len(collection), header_size
    while position + object_header.size <= end:
        index, _, _, size = object_header.unpack_from(collection, position)
        need = object_header.size + -(-size // 8) * 8 if index else size
        if need < object_header.size or position + need > end:
            return (
                f"object {index} at byte {position} of the collection declares {size} bytes, which "
                f"{'do not hold its own header' if need < object_header.size else 'run past its end'} "
                f"(collection of {end} bytes)"
            )
        position += need
    return None


class DamagedGlobalHeap(OSError):
    """A global heap collection that HDF5 was about to parse is damaged."""


class HeapCheckingReader(io.RawIOBase):
    """A read-only file for h5py's ``fileobj`` driver that checks, with :func:`global_heap_problem`,
    every global heap collection whose signature appears in what HDF5 reads, before HDF5 parses it
    (raising :class:`DamagedGlobalHeap`, which h5py passes on)."""

    def __init__(self, handle: io.BufferedReader, length_size: int) -> None:
        super().__init__()
        self._handle = handle
        self._length = struct.Struct("<" + LENGTH_FORMATS[length_size])
        self._length_size = length_size
        self._file_size = handle.seek(0, io.SEEK_END)
        self._checked: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer: Any) -> int:
        """Read as a file does, after checking the collections whose signature is in the bytes read (or
        starts in the 3 bytes before them: a signature split across two reads is seen in the later)."""
        start = self._handle.tell()
        count = self._handle.readinto(buffer)
        lead = min(len(_HEAP_SIGNATURE) - 1, start)
        self._handle.seek(start - lead)
        data = self._handle.read(lead) + bytes(memoryview(buffer)[:count])
        found = data.find(_HEAP_SIGNATURE)
        while found >= 0:
            self._check_collection(start - lead + found)
            found = data.find(_HEAP_SIGNATURE, found + 1)
        self._handle.seek(start + count)
        return count

    def _check_collection(self, address: int) -> None:
        """Check the collection at ``address``, if the bytes there are one (version 1, a size that fits the file)."""
        if address in self._checked:
            return
        self._handle.seek(address)
        header = self._handle.read(8 + self._length_size)
        if len(header) < 8 + self._length_size or header[4:8] != bytes([_HEAP_VERSION, 0, 0, 0]):
            return
        (size,) = self._length.unpack_from(header, 8)
        if not _HEAP_MIN_SIZE <= size <= self._file_size - address:
            return  # not a collection HDF5 could read whole: it fails on its own
        self._handle.seek(address)
        problem = global_heap_problem(self._handle.read(size), self._length_size)
        if problem is not None:
            raise DamagedGlobalHeap(f"HDF5 global heap collection at byte {address} is damaged: {problem}")
        self._checked.add(address)


def read_heap_values(hf: h5py.File) -> None:
    """Read every root attribute and a variable-length ``ismrmrd_header``; errors other than
    :class:`DamagedGlobalHeap` are passed over (each value is read on its own)."""

    def read_header() -> None:
        header = hf["ismrmrd_header"]
        if header.dtype.kind == "O":
            header[()]

    readers: list[Callable[[], object]] = [partial(hf.attrs.__getitem__, name) for name in hf.attrs]
    if isinstance(hf.get("ismrmrd_header", getlink=True), h5py.HardLink):
        readers.append(read_header)
    for read in readers:
        try:
            read()
        except DamagedGlobalHeap:
            raise
        except Exception:  # not heap damage: the validation that follows reports it
            continue
