#!/usr/bin/env bash
# Builds the testbed's real components once and caches them outside the work tree:
#   kube-apiserver, kube-scheduler, kube-controller-manager (Go module proxy, pinned in go/kube),
#   etcd (go/etcd), kwok (go/kwok), and moto's EC2 server in a virtualenv (requirements.txt).
# The cache key is a hash of the lock files and of this script, so a second run builds nothing.
# Prints the directory holding bin/ and venv/ on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${IPP_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipp-testbed}
log() { printf '[testbed] %s\n' "$*" >&2; }

key=$(cat "$here/build.sh" "$here"/go/*/go.mod "$here"/go/*/go.sum "$here/requirements.txt" | sha256sum | cut -c1-16)
out="$root/$key"
if [[ -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$root"
exec 9>"$root/.lock"
log "waiting for the build lock ($root/.lock)"
flock 9
if [[ -f "$out/.complete" ]]; then echo "$out"; exit 0; fi

command -v go >/dev/null || { log "Go 1.26 or newer is required (kwok v0.8.0 needs it): https://go.dev/dl/"; exit 1; }
command -v python3 >/dev/null || { log "Python 3.10 or newer is required for moto"; exit 1; }

# Build in place; only .complete (written last) makes the directory count as a cache hit.
tmp="$out"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
start=$(date +%s)

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly -buildvcs=false"

# go build -v names each package as it compiles: count them as progress, one line every 100.
progress() {
  local what=$1 n=0 line
  while IFS= read -r line; do
    case "$line" in
      *" "*) printf '%s\n' "$line" >&2 ;;  # package paths have no spaces; anything else is a message
      *) n=$((n + 1)); if (( n % 100 == 0 )); then log "$what: $n packages compiled ($(( $(date +%s) - start ))s)"; fi ;;
    esac
  done
  log "$what: done, $n packages ($(( $(date +%s) - start ))s)"
}

# The version a module requires, read from its go.mod (single-line or block form).
required() { awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print $NF; exit }' "$here/go/$1/go.mod"; }

kube_version=$(required kube k8s.io/kubernetes)
minor=$(echo "$kube_version" | cut -d. -f2)
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$kube_version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"

log "building Kubernetes $kube_version (apiserver, scheduler, controller-manager); cold builds take 15-30 min on 2 cores"
(cd "$here/go/kube" && go build -v -ldflags "$ldflags" -o "$tmp/bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-controller-manager 2>&1) | progress kubernetes
etcd_version=$(required etcd go.etcd.io/etcd/server/v3)
log "building etcd $etcd_version"
(cd "$here/go/etcd" && go build -v -ldflags "-s -w" -o "$tmp/bin/etcd" . 2>&1) | progress etcd
log "building kwok"
(cd "$here/go/kwok" && go build -v -ldflags "-s -w" -o "$tmp/bin/kwok" sigs.k8s.io/kwok/cmd/kwok 2>&1) | progress kwok
# kwok needs its Stage objects (node-initialize, heartbeat, pod-ready, ...): take the upstream
# "fast" set from the very module version we built.
kwok_dir=$(cd "$here/go/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cat "$kwok_dir/kustomize/stage/$f"; echo '---'
done > "$tmp/kwok-stages.yaml"

log "installing moto into a virtualenv"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2

for b in kube-apiserver etcd kwok; do "$out/bin/$b" --version >/dev/null 2>&1 || { log "$b does not run"; exit 1; }; done
"$out/venv/bin/moto_server" --help >/dev/null || { log "moto_server does not run"; exit 1; }

touch "$out/.complete"
log "testbed ready in $(( $(date +%s) - start ))s: $out"
echo "$out"
