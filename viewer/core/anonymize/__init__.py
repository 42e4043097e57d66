"""De-identification: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

* :mod:`.profile`: the attribute action table (Table E.1-1, from ``dicom-anonymizer``);
* :mod:`.engine`: :class:`Anonymizer`, one run's key and the profile applied to a dataset;
* :mod:`.tree`: a file or folder anonymised into a new folder (``radview anonymize``);
* :mod:`.exports`: anonymised DICOM SEG, label sidecar JSON and screenshot volumes.
"""

from viewer.core.anonymize.engine import AnonymizeOptions, Anonymizer
from viewer.core.anonymize.tree import (
    AnonymizeReport,
    DestinationError,
    anonymize_file,
    anonymize_tree,
    burned_in_reason,
)

__all__ = [
    "AnonymizeOptions",
    "AnonymizeReport",
    "Anonymizer",
    "DestinationError",
    "anonymize_file",
    "anonymize_tree",
    "burned_in_reason",
]
