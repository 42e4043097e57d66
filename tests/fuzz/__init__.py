"""Fuzzing of the DICOM header scan and pixel decoding (see ``fuzz_dicom``)."""
