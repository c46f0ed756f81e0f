"""Airflow hooks: Airflow connections and settings turned into nova-audit collaborators."""
