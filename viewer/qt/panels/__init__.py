"""Dockable panels of the main window: series browser, tag browser, window histogram."""

from viewer.qt.panels.browser import SeriesBrowser
from viewer.qt.panels.histogram import WindowHistogram
from viewer.qt.panels.tags import TagBrowser

__all__ = ["SeriesBrowser", "TagBrowser", "WindowHistogram"]
