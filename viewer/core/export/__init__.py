"""Writers for volumes and masks (NIfTI, NRRD...)."""
