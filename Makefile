# `make demo` and `make test` do all set-up on a fresh machine: a virtual environment in
# .venv, torch's CPU pin first (a plain `torch` would pull a multi-GB CUDA build), then the
# package with its `smartray` console script.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
LAKE ?= ./lake
# glibc hands big freed buffers back to the kernel and faults them in again for the next
# image; these keep them (decode ~2x faster, PERFORMANCE.md). Ray workers inherit them.
export MALLOC_MMAP_THRESHOLD_ ?= 100000000
export MALLOC_TRIM_THRESHOLD_ ?= 1000000000
export MALLOC_TOP_PAD_ ?= 100000000

.PHONY: install demo test test-unit test-reliability lint check-k8s clean chromium

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Real sample videos for the demo: Debian's opencv-doc, unpacked, not installed. Where apt
# is missing the demo says so and uses its generated clip only.
OPENCV_DOC := .cache/opencv-doc/usr/share/doc/opencv-doc/examples/data

$(OPENCV_DOC):
	mkdir -p .cache/opencv-doc
	cd .cache && (apt-get download opencv-doc >/dev/null && dpkg -x opencv-doc_*.deb opencv-doc \
		&& rm -f opencv-doc_*.deb) || echo "opencv-doc not available: the demo uses generated video only"

# Fashion-MNIST (Debian's dataset-fashion-mnist, 31 MB): a real corpus of small low-texture
# images for the near-duplicate tests. The installed package is used where there is one.
FASHION_MNIST := .cache/fashion-mnist/usr/share/datasets/fashion-mnist

$(FASHION_MNIST):
	mkdir -p .cache/fashion-mnist
	test -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz || (cd .cache && \
		(apt-get download dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get download dataset-fashion-mnist >/dev/null)) && \
		dpkg -x dataset-fashion-mnist_*.deb fashion-mnist && rm -f dataset-fashion-mnist_*.deb)
	mkdir -p $(FASHION_MNIST)

# Real photos without faces for the blur tests and bench/blur.py: Debian's mate-backgrounds
# (30 wallpapers), unpacked, not installed. opencv-doc above has the photos with faces.
MATE_BACKGROUNDS := .cache/mate-backgrounds/usr/share/backgrounds/mate

$(MATE_BACKGROUNDS):
	mkdir -p .cache/mate-backgrounds
	cd .cache && (apt-get download mate-backgrounds >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get download mate-backgrounds >/dev/null)) && \
		dpkg -x mate-backgrounds_*.deb mate-backgrounds && rm -f mate-backgrounds_*.deb

# Debian's opencv-data: the LBP face cascade, an independent check on the blurred demo
# photos (tests/reliability/test_privacy.py), unpacked, not installed.
OPENCV_DATA := .cache/opencv-data/usr/share/opencv4

$(OPENCV_DATA):
	mkdir -p .cache/opencv-data
	cd .cache && (apt-get download opencv-data >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get download opencv-data >/dev/null)) && \
		dpkg -x opencv-data_*.deb opencv-data && rm -f opencv-data_*.deb

# Headless Chromium for the browser test of `smartray report` (tests/integration/browser.py).
chromium:
	command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

demo: $(STAMP) | $(OPENCV_DOC)
	$(BIN)/smartray demo --lake $(LAKE)

# The 20 slowest steps close the output: the suite must stay under 20 minutes cold on 2 cores.
test: $(STAMP) | $(FASHION_MNIST) $(OPENCV_DOC) $(MATE_BACKGROUNDS) chromium
	$(BIN)/python -m pytest --durations=20

test-unit: $(STAMP) | $(OPENCV_DOC) $(MATE_BACKGROUNDS)
	$(BIN)/python -m pytest -m "not integration"

# The fault, load and hostile-input campaigns (tests/reliability, RELIABILITY.md) at the
# sizes CI affords, capped at 30 minutes; RELIABILITY_FLAGS sets other sizes, e.g.
# `make test-reliability RELIABILITY_FLAGS="--fuzz-files 10000"`.
RELIABILITY_FLAGS ?= --train-seeds 2

test-reliability: $(STAMP) | $(OPENCV_DOC) $(OPENCV_DATA)
	timeout --signal=INT --kill-after=60 1800 $(BIN)/python -m pytest tests/reliability $(RELIABILITY_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check smartray jobs tests bench cluster
	$(BIN)/ruff format --check smartray jobs tests bench cluster
	$(BIN)/mypy

# Render the Kubernetes overlays and check them against the KubeRay CRDs (docs/deploy.md).
check-k8s: $(STAMP)
	$(BIN)/python -m smartray.deploy.manifests k8s/overlays/cpu k8s/overlays/gpu

clean:
	rm -rf $(VENV) $(LAKE) demo-data .pytest_cache test-artifacts
