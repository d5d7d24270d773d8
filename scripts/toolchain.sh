#!/usr/bin/env bash
# Provide the pinned native toolchain: Pulumi CLI + Python language host,
# the Python dynamic-provider host, Centrifugo, Mailpit and (via pip) SeaweedFS.
#
# pulumi-command is NOT built: the Go proxy serves no version of
# github.com/pulumi/pulumi-command/provider (no module tags), so the local
# renderer realises services through a Pulumi dynamic provider
# (infra/local_process.py), which needs only `pulumi-resource-pulumi-python`.
#
# Everything is built from the Go module proxy into a cache outside the
# repository, keyed by version, so a second run takes seconds:
#   ${TELESTACK_CACHE:-~/.cache/telestack}/bin/<tool>-<version>/
# Usage: scripts/toolchain.sh            (prints the bin dir on stdout)
set -euo pipefail

PULUMI_VERSION=3.259.0
# The python language host became its own module (no tags) in Aug 2023; the
# registry proxy here serves none of its pseudo-versions, so we build it from
# sdk/v3@v3.79.0, the last release that had it inside the sdk module.
LANGHOST_SDK_VERSION=3.79.0
CENTRIFUGO_VERSION=6.9.1
CENTRIFUGO_BUILD=2   # bump when the build flags change, so the cache is rebuilt
MAILPIT_VERSION=1.33.1

CACHE=${TELESTACK_CACHE:-$HOME/.cache/telestack}
# static binaries, reproducible paths, the machine's own Go (never a downloaded toolchain)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath"

log() { printf '[toolchain] %s\n' "$*" >&2; }

# build_pulumi: CLI and python language host in a throw-away module.
# pkg's go.mod has replace directives, so `go install pkg@ver` is refused;
# we require pkg+sdk at the same version and copy its non-local replaces.
build_pulumi() {
  local dest=$CACHE/bin/pulumi-$PULUMI_VERSION
  if [[ -x $dest/pulumi && -x $dest/pulumi-language-python && -x $dest/pulumi-language-python-exec ]]; then
    log "pulumi $PULUMI_VERSION: cached"; provide_dynamic_host "$dest"; return
  fi
  if command -v pulumi >/dev/null 2>&1 && command -v pulumi-language-python >/dev/null 2>&1; then
    log "pulumi: using $(command -v pulumi) from PATH"; mkdir -p "$dest"
    ln -sf "$(command -v pulumi)" "$dest/pulumi"
    ln -sf "$(command -v pulumi-language-python)" "$dest/pulumi-language-python"
    ln -sf "$(command -v pulumi-language-python-exec)" "$dest/pulumi-language-python-exec"
    provide_dynamic_host "$dest"
    return
  fi
  local mod=$CACHE/build/pulumi-$PULUMI_VERSION
  mkdir -p "$mod" "$dest.tmp"
  log "pulumi $PULUMI_VERSION: building CLI from Go modules (cold: several minutes)"
  cat >"$mod/go.mod" <<GOMOD
module telestack.local/pulumi-build

go 1.25

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e

replace golang.org/x/text => golang.org/x/text v0.39.0
GOMOD
  (cd "$mod" \
    && go get "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
    && go build -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
         -o "$dest.tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    )
  local sdkdir
  sdkdir=$(cd "$mod" && go list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/sdk/v3")
  local hostmod=$CACHE/build/pulumi-language-python-$LANGHOST_SDK_VERSION
  mkdir -p "$hostmod"
  log "pulumi: building python language host (sdk v$LANGHOST_SDK_VERSION)"
  cat >"$hostmod/go.mod" <<GOMOD
module telestack.local/pulumi-langhost-build

go 1.25

replace golang.org/x/text => golang.org/x/text v0.3.6
GOMOD
  (cd "$hostmod" \
    && go get "github.com/pulumi/pulumi/sdk/v3@v$LANGHOST_SDK_VERSION" \
    && go build -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LANGHOST_SDK_VERSION" \
         -o "$dest.tmp/pulumi-language-python" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python)
  install -m 0755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$dest.tmp/pulumi-language-python-exec"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
  provide_dynamic_host "$dest"
}

# provide_dynamic_host DIR: the engine launches dynamic providers through
# `pulumi-resource-pulumi-python` (a shell script shipped in sdk/v3's python/dist),
# looked up next to the CLI or on PATH.
provide_dynamic_host() {
  local dest=$1
  [[ -x $dest/pulumi-resource-pulumi-python ]] && return
  if command -v pulumi-resource-pulumi-python >/dev/null 2>&1; then
    ln -sf "$(command -v pulumi-resource-pulumi-python)" "$dest/pulumi-resource-pulumi-python"; return
  fi
  local sdkdir
  sdkdir=$(cd /tmp && go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  install -m 0755 "$sdkdir/python/dist/pulumi-resource-pulumi-python" "$dest/pulumi-resource-pulumi-python"
  log "pulumi: dynamic provider host installed"
}

build_centrifugo() {
  local dest=$CACHE/bin/centrifugo-$CENTRIFUGO_VERSION-$CENTRIFUGO_BUILD
  if [[ -x $dest/centrifugo ]]; then log "centrifugo $CENTRIFUGO_VERSION: cached"; return; fi
  log "centrifugo $CENTRIFUGO_VERSION: building (cold: a few minutes)"
  mkdir -p "$dest.tmp"
  GOBIN=$dest.tmp go install -ldflags "-s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=$CENTRIFUGO_VERSION" \
    "github.com/centrifugal/centrifugo/v6@v$CENTRIFUGO_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

# build_mailpit: the local stack's SMTP server (and the tests'), with an HTTP API and web UI
build_mailpit() {
  local dest=$CACHE/bin/mailpit-$MAILPIT_VERSION
  if [[ -x $dest/mailpit ]]; then log "mailpit $MAILPIT_VERSION: cached"; return; fi
  log "mailpit $MAILPIT_VERSION: building (cold: about a minute)"
  mkdir -p "$dest.tmp"
  GOBIN=$dest.tmp go install -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=v$MAILPIT_VERSION" \
    "github.com/axllent/mailpit@v$MAILPIT_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

main() {
  mkdir -p "$CACHE/bin"
  build_pulumi
  build_centrifugo
  build_mailpit
  # one stable directory of links for PATH
  local links=$CACHE/bin/current
  mkdir -p "$links"
  ln -sfn "$CACHE/bin/pulumi-$PULUMI_VERSION/pulumi" "$links/pulumi"
  ln -sfn "$CACHE/bin/pulumi-$PULUMI_VERSION/pulumi-language-python" "$links/pulumi-language-python"
  ln -sfn "$CACHE/bin/pulumi-$PULUMI_VERSION/pulumi-language-python-exec" "$links/pulumi-language-python-exec"
  ln -sfn "$CACHE/bin/pulumi-$PULUMI_VERSION/pulumi-resource-pulumi-python" "$links/pulumi-resource-pulumi-python"
  ln -sfn "$CACHE/bin/centrifugo-$CENTRIFUGO_VERSION-$CENTRIFUGO_BUILD/centrifugo" "$links/centrifugo"
  ln -sfn "$CACHE/bin/mailpit-$MAILPIT_VERSION/mailpit" "$links/mailpit"
  echo "$links"
}

main "$@"
