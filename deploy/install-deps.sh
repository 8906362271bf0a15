#!/usr/bin/env bash
# install-deps.sh: install every Debian package that mediabatch's build, tests and
# benchmarks need. This is the one place that lists them; .ci/run and the README call it.
#
# Idempotent: packages already present are skipped by apt-get; running it twice is harmless.
# Needs root (or sudo). CUDA is not installed here: it is optional and comes from NVIDIA's
# own packages at /usr/local/cuda (see README.md, "Building by hand": the `cuda` option).
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config git
	# libraries the build links (pkg-config names in meson.build)
	libdpdk-dev      # libdpdk: rings, EAL, mempools, ethdev
	libnuma-dev      # DPDK's NUMA support
	libhwloc-dev     # hwloc: topology, NUMA locality of NICs and GPUs
	libzmq3-dev      # libzmq: ROUTER/PUB front door and egress (CURVE through libsodium)
	libczmq-dev      # czmq: zcert, the ZeroMQ certificate files of CURVE keys
	libcunit1-dev    # cunit: every test program
	libcyaml-dev     # libcyaml: the YAML config file (--config)
	libyaml-dev      # libcyaml links -lyaml, but its -dev package does not pull this in
	libfftw3-dev     # fftw3f: the CPU STFT of logmel and whisper
	libmicrohttpd-dev # /metrics, /healthz, /readyz
	libcurl4-openssl-dev # libcurl: the CLI and mediabatch-perf reach it over https, with a token
	libgnutls28-dev  # gnutls: the TLS client and self-signed certificate of test e2e/http
	libjansson-dev   # jansson: the JSON header of safetensors weight files
	libopenblas-dev  # openblas: GEMM of the CPU reference models (whisper, clap, videomae)
	libpcap-dev      # libpcap: the dpdk tests and perf/ingest_bench write captures for net_pcap
	libsndfile1-dev  # libsndfile: the CLI and mediabatch-perf read common audio files
	libsoxr-dev      # libsoxr: ... and resample them to the model's rate
	# tools the tests and benchmarks run
	dpdk-dev         # dpdk-testpmd, dpdk-test (ring_perf_autotest): benchmark baselines
	hwloc            # hwloc-calc / lstopo, to inspect topologies by hand
	clang-format     # the style check (.clang-format)
	help2man         # the man pages, generated from each program's --help
	man-db           # man: test deploy/install renders the installed pages
	curl             # the README's examples and test prometheus/scrape (the API and /metrics)
	clang            # the fuzz build (build-fuzz/): libFuzzer targets of tests/fuzz/
	libclang-rt-14-dev # sanitizer runtimes used by clang builds, and libFuzzer's
	llvm-14          # llvm-profdata, llvm-cov: coverage of tests/fuzz/long-run.sh
	python3          # small test helpers
	python3-zmq      # the Python client package (clients/python) and its tests
	python3-venv     # ... installed into a virtual environment by test python/client,
	python3-pip      # ... with pip (offline: --no-build-isolation --no-index)
	python3-setuptools # ... its build backend (pyproject.toml)
	python3-wheel    # ... which needs wheel to build the package
	python3-torch    # the networks' reference implementations (tests/unit/gpu/ref/*.py)
	python3-numpy    # ... and the safetensors reader they use
	iproute2         # ip netns / veth: the live UDP test (suite dpdk)
	gnuplot-nox      # mediabatch-perf --plot: the PNG plots (without it: data and scripts only)
	systemd          # systemd-analyze verify: the unit files in deploy/ (test deploy/install)
	libsystemd-dev   # libsystemd: sd_notify() of mediabatchd (Type=notify, watchdog); optional
	prometheus       # promtool and a server: the alert rules of deploy/prometheus/ (tests/prometheus)
	debootstrap      # the container image's Debian base, made offline (deploy/container/build.sh)
	podman           # ... built from deploy/container/Containerfile and run (test deploy/container)
	buildah          # ... podman's build engine, also usable alone (buildah bud)
	runc             # ... the OCI runtime where crun refuses the host's cgroups (hybrid v1+v2)
)

# node and npm: the offline validator of deploy/kubernetes/ (test deploy/kubernetes; `npm ci`
# of its pinned packages, tests/deploy/k8s/package-lock.json). Debian 12 has nodejs 18 and
# npm 9. A node installed from elsewhere is kept: NodeSource's nodejs bundles npm and
# conflicts with Debian's npm package, which apt would then refuse.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages already installed"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
