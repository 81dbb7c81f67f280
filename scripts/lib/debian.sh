# Shared by scripts/run and scripts/test: installing Debian packages when they are missing.
# Source it, then call `install_debian_packages PKG...`.

# The packages building rolegate needs: OpenSSL and pkg-config for the TLS stack; libxml2,
# libxmlsec1 and libclang for samael's xmlsec binding (bindgen runs at build time).
BUILD_PACKAGES=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev clang)

phase() {
    printf '\n==> %s\n' "$*"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Installs those of the named packages that are missing (none: nothing to do, no apt run).
install_debian_packages() {
    phase "Debian packages"
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "all present ($# required)"
        return
    fi
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
