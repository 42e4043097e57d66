"""PySide6 widgets, tools and workers: the thin top layer (nothing imports it but the entry point).

Importing this package imports nothing heavy; import the submodules you need
(``viewer.qt.workers``, ``viewer.qt.panels``...).
"""
