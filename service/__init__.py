"""The composition root: the ``dosewatch`` command, process start-up, the embedded servers and
the demo. It wires the core (:mod:`dosewatch`) to the adapters (``gateway``, ``alarms``,
``dashboards``, ``dispenser_sim``); nothing imports it but the entry point and the tests, so the
core never depends on what it is plugged into."""
