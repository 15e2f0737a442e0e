#!/usr/bin/env bash
# Installs what dyad needs on a fresh Debian 12 machine, skipping what is already there:
#   apt: libtorch-dev (libtorch 1.13), libgloo-dev (Gloo headers: torch.distributed), libopenblas0-openmp (fast BLAS; without it libtorch
#        falls back to reference BLAS, ~18x slower matmuls), dataset-fashion-mnist (demo data),
#        python3-torch, python3-pil, python3-torchvision (the tests that check dyad against
#        PyTorch / PIL on the same inputs, and the PyTorch references of the benchmarks),
#        chromium (the onnxruntime-web browser test, driven by playwright-core);
#   npm: `npm ci` when node_modules is missing or older than package-lock.json.
# The addon build itself is `npm run build:native` (skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libtorch-dev libgloo-dev libopenblas0-openmp dataset-fashion-mnist python3-torch python3-pil python3-torchvision chromium)
[ -n "${DYAD_SETUP_EXTRA:-}" ] && APT_PACKAGES+=(${DYAD_SETUP_EXTRA})

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "dyad setup: installing ${missing[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime-node (a devDependency) ships its CPU binary in the npm package; on linux/x64 its
# postinstall would also fetch CUDA providers from NuGet: skip that, nothing beyond npm is downloaded
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "dyad setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
