# smartray on Ray's own image:
#   docker build -t <registry>/smartray:0.1.0 . && docker push <registry>/smartray:0.1.0
FROM rayproject/ray:2.60.0-py311

# torch's CPU wheel first, so the package's range does not pull a CUDA build; GPU images
# install the CUDA build of the same version here instead.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

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
