"""cinder-api's WSGI entry point for gunicorn: Cinder parses sys.argv as its own
options, so it gets its config file there instead of gunicorn's arguments."""

import os
import sys

sys.argv = [sys.argv[0], "--config-file", os.environ["CINDER_CONFIG_FILE"]]

from cinder.wsgi.wsgi import initialize_application  # noqa: E402

application = initialize_application()
