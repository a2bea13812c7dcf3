# The chaoslab image for scheduled in-cluster runs (`chaoslab schedule render`, docs/scheduling.md):
#   docker build -t chaoslab:0.1.0 .
# API-level faults (drain-node, evict-pods, node-failure) and every probe need only the ServiceAccount and
# RBAC that `schedule render` prints, so the image runs as a non-root user with a read-only root file
# system. Node-level faults (kill a control-plane process, partition, netem) act on the control-plane
# hosts: through SSH or a privileged helper pod (the kubeconfig/ssh targets), never from this container.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
# Only what the package build needs, so editing docs or tests does not invalidate the install layer.
COPY pyproject.toml README.md ./
COPY chaoslab ./chaoslab
RUN pip install . && rm -rf /src

# Probe sets are found under the working directory (probes/NAME.yaml); experiments are shipped beside them
# for ad-hoc runs (`docker run chaoslab validate experiments/`). A scheduled run mounts its own file.
WORKDIR /opt/chaoslab
COPY probes ./probes
COPY experiments ./experiments

RUN groupadd --gid 10001 chaoslab \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin chaoslab \
    && mkdir -p /results && chown 10001:10001 /results
USER 10001:10001
ENV HOME=/tmp CHAOSLAB_STATE_DIR=/tmp/chaoslab

VOLUME ["/results"]
ENTRYPOINT ["chaoslab"]
CMD ["--help"]
