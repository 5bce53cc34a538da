"""The public HTTP API under /api/v1: FastAPI routes over core, mounted in the one server
process beside the pages (server/app.py). Every route acts as the caller's account, through the
same core checks as the pages; errors are JSON with a code and a message, never a traceback."""
