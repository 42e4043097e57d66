"""numpy + pydicom + SimpleITK core: no Qt, no VTK, no TensorFlow (see DESIGN.md)."""
