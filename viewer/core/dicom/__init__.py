"""DICOM scanning, stack planning and pixel decoding."""
