"""The nova-audit page in Airflow's UI: a FastAPI app the plugin mounts under the api-server.

data.py reads the summary reports of recent runs, chart.py and render.py turn
them into HTML with an inline SVG, app.py serves both behind Airflow's auth.
"""

URL_PREFIX = "/nova-audit"  # where the api-server mounts the page's app
