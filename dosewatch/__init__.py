"""dosewatch: the server side of a fleet of home medication dispensers.

This package is the small shared core: configuration, the clock, the pure domain model and the
database layer. The adapters (``gateway``, ``alarms``, ``dashboards``) import from here; the
domain never imports an adapter.
"""

__version__ = "0.1.0"
