"""Synthetic demo data: a chest CT phantom and a DICOM writer that files it like a scanner.

Public API:

* :func:`chest_phantom` - synthetic chest CT in HU, array order (k, j, i), with labels.
* :func:`write_series` - write a (k, j, i) volume as a single- or multi-frame DICOM series.
* :func:`writable_transfer_syntaxes` - transfer syntaxes ``write_series`` can encode here.
* :func:`make_demo_study` - the phantom CT plus a real chest radiograph, in one folder.
"""

from viewer.core.demo.phantom import LABEL_NAMES, chest_phantom
from viewer.core.demo.study import make_demo_study
from viewer.core.demo.writer import writable_transfer_syntaxes, write_series

__all__ = [
    "LABEL_NAMES",
    "chest_phantom",
    "make_demo_study",
    "writable_transfer_syntaxes",
    "write_series",
]
