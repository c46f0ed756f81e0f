# Airflow 3.3 image with nova-audit installed (DAGs, operators, plugin, CLI).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root pyproject.toml README.md /opt/nova-audit/
COPY --chown=airflow:root nova_audit_ops /opt/nova-audit/nova_audit_ops
RUN pip install --no-cache-dir "/opt/nova-audit" "apache-airflow[postgres,celery,redis]==3.3.2"
COPY --chown=airflow:root dags /opt/airflow/dags
