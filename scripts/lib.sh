# Shared helpers for Shoal's scripts. Source it; do not run it.

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given as arguments that are not installed yet (apt-get update once, first).
ensure_debian_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "shoal: installing Debian packages: ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

# Installs the Python packages given as arguments (import name=pip name) that cannot be imported yet.
ensure_python_packages() {
    local pair module package
    for pair in "$@"; do
        module="${pair%%=*}"
        package="${pair#*=}"
        if ! python3 -c "import ${module}" 2>/dev/null; then
            echo "shoal: installing Python package ${package}" >&2
            python3 -m pip install --quiet "${package}" 2>/dev/null \
                || python3 -m pip install --quiet --break-system-packages "${package}"
        fi
    done
}

# The packages every build needs.
BUILD_PACKAGES=(liburing-dev libssl-dev pkg-config)
