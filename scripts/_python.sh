# Sourced by the other scripts: finds a Python >= 3.12 and prints its path.
# Order: $VEIL_PYTHON, python3.13/python3.12/python3 on PATH, then pyenv's installed versions.

veil_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

veil_find_python() {
    local candidate
    for candidate in "${VEIL_PYTHON:-}" python3.14 python3.13 python3.12 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && veil_python_ok "$(command -v "$candidate")"; then
            command -v "$candidate"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        local root version
        root=$(pyenv root)
        for version in $(pyenv versions --bare 2>/dev/null | sort -rV); do
            for candidate in "$root/versions/$version/bin/python3"; do
                if [ -x "$candidate" ] && veil_python_ok "$candidate"; then
                    echo "$candidate"; return 0
                fi
            done
        done
    fi
    return 1
}
