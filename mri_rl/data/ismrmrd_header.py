"""Writing and reading the ISMRMRD XML header that fastMRI files carry.

fastMRI's ``SliceDataset`` reads three things from the header (namespaced
``http://www.ismrm.org/ISMRMRD``): the encoded matrix size, the reconstruction
matrix size and the ``kspace_encoding_step_1`` limits, from which it derives the
zero-padded phase-encode columns::

    padding_left  = encoded_width // 2 - center
    padding_right = padding_left + maximum + 1
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from mri_rl.kspace import KspaceGeometry

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"


def build_header(geometry: KspaceGeometry, num_coils: int, field_of_view_mm: float = 140.0) -> bytes:
    """Build a namespaced ISMRMRD header for ``geometry``.

    Args:
        geometry: the encoded/recon sizes and padding to record.
        num_coils: receiver channels (1 for single-coil).
        field_of_view_mm: in-plane field of view of the reconstruction matrix.

    Returns:
        UTF-8 XML bytes, as stored in the ``ismrmrd_header`` dataset.
    """
    rows, cols, _ = geometry.encoded_size
    recon_rows, recon_cols, _ = geometry.recon_size
    center = cols // 2 - geometry.padding_left
    maximum = geometry.acquired_width - 1
    fov_encoded_x = field_of_view_mm * rows / recon_rows
    fov_encoded_y = field_of_view_mm * cols / recon_cols

    def limit(name: str, low: int, high: int, centre: int) -> str:
        return f"<{name}><minimum>{low}</minimum><maximum>{high}</maximum><center>{centre}</center></{name}>"

    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}">'
        "<acquisitionSystemInformation>"
        f"<receiverChannels>{num_coils}</receiverChannels>"
        "</acquisitionSystemInformation>"
        "<encoding>"
        "<encodedSpace>"
        f"<matrixSize><x>{rows}</x><y>{cols}</y><z>1</z></matrixSize>"
        f"<fieldOfView_mm><x>{fov_encoded_x:.3f}</x><y>{fov_encoded_y:.3f}</y><z>3.0</z></fieldOfView_mm>"
        "</encodedSpace>"
        "<reconSpace>"
        f"<matrixSize><x>{recon_rows}</x><y>{recon_cols}</y><z>1</z></matrixSize>"
        f"<fieldOfView_mm><x>{field_of_view_mm:.3f}</x><y>{field_of_view_mm:.3f}</y><z>3.0</z></fieldOfView_mm>"
        "</reconSpace>"
        "<trajectory>cartesian</trajectory>"
        "<encodingLimits>"
        + limit("kspace_encoding_step_0", 0, rows - 1, rows // 2)
        + limit("kspace_encoding_step_1", 0, maximum, center)
        + limit("slice", 0, 0, 0)
        + limit("average", 0, 0, 0)
        + limit("contrast", 0, 0, 0)
        + limit("repetition", 0, 0, 0)
        + "</encodingLimits>"
        "</encoding>"
        "</ismrmrdHeader>"
    )
    return xml.encode("utf-8")


def parse_geometry(header: bytes | str) -> KspaceGeometry:
    """Read the geometry fastMRI uses from an ISMRMRD header.

    Raises:
        ValueError: the XML is malformed or lacks one of the required fields;
            the message names the missing field.
    """
    try:
        root = ElementTree.fromstring(header)
    except ElementTree.ParseError as error:  # a SyntaxError, not a ValueError
        raise ValueError(f"ismrmrd_header is not well-formed XML: {error}") from None
    ns = {"m": ISMRMRD_NAMESPACE}

    def read_int(*path: str) -> int:
        query = "." + "".join(f"//m:{p}" for p in path)  # the query fastmri uses
        node = root.find(query, ns)
        if node is None or node.text is None:
            raise ValueError(f"ismrmrd_header lacks <{'/'.join(path)}> (namespace {ISMRMRD_NAMESPACE})")
        return int(node.text)

    def size(space: str) -> tuple[int, int, int]:
        x, y, z = (read_int("encoding", space, "matrixSize", a) for a in "xyz")
        return x, y, z

    encoded, recon = size("encodedSpace"), size("reconSpace")
    limits = ("encoding", "encodingLimits", "kspace_encoding_step_1")
    center = read_int(*limits, "center")
    maximum = read_int(*limits, "maximum")
    padding_left = encoded[1] // 2 - center
    return KspaceGeometry(
        encoded_size=encoded,
        recon_size=recon,
        padding_left=padding_left,
        padding_right=padding_left + maximum + 1,
    )
