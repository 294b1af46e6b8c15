# Sourced by tools/run-sdk-conformance.sh and tools/run-sdk-dropin.sh (from the repository root):
# the virtual environment with Microsoft's Python device SDK (.venv-conformance, every package
# pinned in tests/sdk_conformance/requirements.txt; never a global pip install), and
# run_in_private_netns, which runs a command as root in a private network namespace when the
# kernel allows one (the SDK only dials ports 8883 and 443, so it never collides with another
# emulator or service on those ports), otherwise in the host's, where they must be free.

venv=.venv-conformance
req=tests/sdk_conformance/requirements.txt

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "$0: please install python3-venv" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
    cp "$req" "$venv/requirements.txt"
fi

py="$PWD/$venv/bin/python"

run_in_private_netns() {
    if unshare --net -- true 2>/dev/null; then
        unshare --net -- "$py" tests/sdk_conformance/netns.py "$@"
    else
        echo "$0: no private network namespace here; using the host's ports 8883 and 443" >&2
        "$@"
    fi
}
