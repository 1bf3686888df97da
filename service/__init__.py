"""The composition root: the ``dosewatch`` command, process start-up, the embedded servers and
the demo. It wires the core (:mod:`dosewatch`) to the adapters (``gateway``, ``alarms``,
``dashboards``, ``dispenser_sim``); nothing imports it but the entry point and the tests, so the
core never depends on what it is plugged into."""

import warnings

# The simulator's staff act through the public API in process, over Starlette's TestClient.
# Starlette now warns on every import that its TestClient will move to httpx2; until that
# package is what FastAPI's TestClient uses, the warning only clutters the demo's first screen.
warnings.filterwarnings(
    "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated"
)
