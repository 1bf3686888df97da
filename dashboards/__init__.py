"""The FastAPI web app: API, and later the console, worklist, admin and reports."""
