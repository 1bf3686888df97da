"""The application layer: each use case is one transaction that asks the domain and tells the
database.

Adapters (the gateway, the alarm jobs, the web routes, the Twilio webhooks) call these and
nothing below them for anything that changes an alarm, so the API, the console, an SMS reply
and a keypress all acknowledge through :func:`alarm_actions.acknowledge`, and the sweep and a
device's ``dose_not_taken`` open alarms through :func:`opening.open_alarms`.

Each use case takes a connection and runs in ``conn.transaction()``: on its own it is one
transaction; inside a caller's transaction (a web request, the gateway's batch) it is a
savepoint of it, so it still commits or rolls back as a whole.
"""
