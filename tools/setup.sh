#!/usr/bin/env bash
# Installs what building and testing symgrad needs, from Debian's packages.
# Safe to run again: packages already installed are skipped, and apt-get is not
# touched at all (not even `apt-get update`) when nothing is missing.
#
#   bash tools/setup.sh               # the build, the tests, the examples
#   bash tools/setup.sh --with-torch  # also PyTorch, for tools/ fixture generation
#                                     # and the PyTorch comparison benchmark
set -euo pipefail

packages=(
  build-essential        # compiler, make
  cmake
  libopenblas-dev        # GEMM
  libhwy-dev             # Google Highway, the SIMD kernels
  catch2                 # the test suite (Catch2 2.x)
  nlohmann-json3-dev     # test fixtures
  zlib1g-dev             # reading the gzipped MNIST files
  dataset-fashion-mnist  # the data set the examples train on
)

usage() {
  sed -n '2,8s/^# \{0,1\}//p' "$0"
}

for arg in "$@"; do
  case "$arg" in
    --with-torch) packages+=(python3-torch) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: this is not a Debian-based system (no dpkg-query)." >&2
  echo "Install these packages, or their equivalents, by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  is_installed "$package" || missing+=("$package")
done

if (( ${#missing[@]} == 0 )); then
  echo "setup.sh: all ${#packages[@]} packages already installed."
  exit 0
fi

# Root installs directly; anyone else needs sudo.
as_root=()
if (( EUID != 0 )); then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup.sh: missing packages: ${missing[*]}" >&2
    echo "Installing them needs root, and sudo is not available: run this script as root," >&2
    echo "or ask an administrator to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup.sh: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"

for package in "${missing[@]}"; do
  if ! is_installed "$package"; then
    echo "setup.sh: $package is still not installed after apt-get install" >&2
    exit 1
  fi
done
echo "setup.sh: done."
