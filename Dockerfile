# smartray on Ray's own image:
#   docker build -t <registry>/smartray:0.1.0 . && docker push <registry>/smartray:0.1.0
FROM rayproject/ray:2.60.0-py311

# torch pinned first (PyPI's x86_64 wheel is the CUDA build the GPU workers need), so the
# package's range resolves to it and nothing newer is pulled.
RUN pip install --no-cache-dir torch==2.13.0

WORKDIR /home/ray/smartray
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users smartray ./smartray
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users schemas ./schemas
RUN pip install --no-cache-dir .

# Decode speed: glibc keeps large freed buffers instead of faulting them in again.
ENV MALLOC_MMAP_THRESHOLD_=100000000 \
    MALLOC_TRIM_THRESHOLD_=1000000000 \
    MALLOC_TOP_PAD_=100000000 \
    RAY_AUTH_MODE=token

USER ray
