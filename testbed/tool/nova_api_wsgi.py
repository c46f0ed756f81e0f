"""nova-api's WSGI entry point for gunicorn: Nova parses sys.argv as its own
options, so gunicorn's arguments are hidden from it first."""

import sys

sys.argv = sys.argv[:1]

from nova.wsgi.osapi_compute import application  # noqa: E402

__all__ = ["application"]
