"""Floor 5: everything that imports Airflow, shaped like an Airflow provider."""
