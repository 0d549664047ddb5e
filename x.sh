#!/bin/sh
# zombie-trace in one command, on Debian 12/13 or Ubuntu 22.04/24.04, as root
# or with sudo:
#   ./x.sh run -- [tracer args]   set up what building needs, build, run the tracer
#   ./x.sh test                   set up what is missing, build, run all tests
#   ./x.sh dist                   build the release files into target/dist/
#   ./x.sh setup | build | --help
# This script only makes sure rustup and the toolchain pinned in
# rust-toolchain.toml are there; everything else is `cargo xtask` (xtask/).
set -eu

cd "$(dirname "$0")"

say() { echo "x.sh: $*"; }
die() { echo "x.sh: error: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
else
    SUDO=none
fi
as_root() {
    [ "$SUDO" != none ] || die "'$*' needs root and sudo is not installed: run ./x.sh as root"
    $SUDO "$@"
}

APT_UPDATED=
apt_update() { # once at most
    command -v apt-get >/dev/null 2>&1 ||
        die "no apt-get: this script supports Debian and Ubuntu; install rustup (https://rustup.rs), gcc and ca-certificates yourself and re-run"
    [ -n "$APT_UPDATED" ] || as_root apt-get update
    APT_UPDATED=1
}
apt_install() {
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}
# Whether apt has a version of package $1 to install.
has_candidate() {
    apt_update
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'
}

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
PATH="$CARGO_BIN:$PATH"
export PATH

# A C linker (rustc links through cc) and CA certificates (cargo downloads
# crates over https) are needed before xtask itself can be built.
if ! command -v cc >/dev/null 2>&1 || [ ! -e /usr/include/stdio.h ] ||
    [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then
    say "installing gcc, libc6-dev and ca-certificates"
    apt_install gcc libc6-dev ca-certificates
fi

if ! command -v rustup >/dev/null 2>&1; then
    say "rustup not found: installing it"
    if has_candidate rustup; then
        # Debian 13, Ubuntu 24.04.
        apt_install rustup
    else
        # Debian 12, Ubuntu 22.04: the official installer.
        command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --default-toolchain none --no-modify-path ||
            die "the rustup installer failed: check the network (https://sh.rustup.rs) and re-run"
    fi
    command -v rustup >/dev/null 2>&1 || die "rustup was installed but is not in PATH ($PATH)"
fi

# Some packaged rustups ship no cargo proxy: rustup acts as cargo, rustc, ...
# when called by those names.
if ! command -v cargo >/dev/null 2>&1; then
    mkdir -p "$CARGO_BIN"
    for tool in cargo rustc rustdoc cargo-clippy clippy-driver rustfmt cargo-fmt; do
        ln -sf "$(command -v rustup)" "$CARGO_BIN/$tool"
    done
fi

# The pinned userspace toolchain (rustup does not install it on its own
# here; the explicit name also works with rustup < 1.28).
CHANNEL=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' rust-toolchain.toml)
[ -n "$CHANNEL" ] || die "no channel = \"...\" line in rust-toolchain.toml"
if ! rustup toolchain list | grep -q "^$CHANNEL" ||
    [ "$(rustup component list --toolchain "$CHANNEL" --installed 2>/dev/null |
        grep -c -e '^clippy' -e '^rustfmt')" -lt 2 ]; then
    say "installing Rust $CHANNEL (rust-toolchain.toml)"
    rustup toolchain install "$CHANNEL" --profile minimal --component clippy,rustfmt ||
        die "could not install Rust $CHANNEL: check the network and re-run"
fi

exec cargo xtask "$@"
