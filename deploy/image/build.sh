#!/usr/bin/env bash
# Builds the egress-resolver container image from Debian packages, with no
# base image pulled: `make image` runs it (see mk/image.mk and docs/operating.md,
# "The container image").
#
#   deploy/image/build.sh VERSION DIST_DIR WORK_DIR OUTPUT
#
# 1. mmdebstrap installs Debian bookworm's python3.11 (and dpkg, which
#    configures the packages) into WORK_DIR/rootfs from the machine's own apt
#    sources.
# 2. In its customize hooks, wheels.py downloads (with pip, on this host) the
#    wheels of egress-resolver==VERSION and of pip (the two distributions from
#    DIST_DIR, the rest from the package index) for the interpreter the root
#    file system now holds: its full version, glibc and environment markers
#    (bookworm's 3.11.2 needs dependencies a newer host Python does not).
#    Then, in the root file system, the venv /opt/egress-resolver is made and
#    the wheels are installed into it with no index, and the user
#    egress-resolver (10001:10001) is added.
# 3. umoci puts that root file system into one layer of an OCI image layout
#    (WORK_DIR/oci) and writes its configuration: user, entry point, command,
#    environment, volumes.
# 4. archive.py writes OUTPUT: the layout as a tar that is an OCI archive and
#    a docker-archive at once (index.json and manifest.json over the same
#    blobs), for `podman load` and `docker load`.
set -euo pipefail

version=$1 dist=$(cd "$2" && pwd) work=$3 output=$4
here=$(cd "$(dirname "$0")" && pwd)
# The build host's Python, with pip and packaging (make passes .venv's).
python=${PYTHON:-python3}
suite=bookworm
tag=egress-resolver:$version
uid=10001
venv=/opt/egress-resolver

rm -rf "$work" && mkdir -p "$work" && work=$(cd "$work" && pwd)

# The machine's apt sources (deb822 or one-line files) are the mirrors.
sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  if [ -s "$file" ]; then sources+=("$file"); fi
done

# Documentation, manuals and translations are left out of every package, and
# dpkg does not fsync what it unpacks (force-unsafe-io): the tree only becomes
# a layer, and a build that breaks starts over.
# Afterwards, what only the build needed goes: the wheels, apt's
# configuration, the build host's resolv.conf and hostname, and the device
# nodes (a container runtime provides /dev, /proc and /sys).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)} \
mmdebstrap --variant=custom --mode=root --format=directory \
  --include=dpkg,dash,coreutils,diffutils,sed,grep,findutils,libc-bin,python3.11,libstdc++6 \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --setup-hook='mkdir -p "$1/proc" "$1/sys"' \
  --customize-hook="'$python' '$here/wheels.py' --root \"\$1\" --python /usr/bin/python3.11 \
    --dest \"\$1/tmp/wheels\" --find-links '$dist' egress-resolver==$version pip" \
  --customize-hook="chroot \"\$1\" python3.11 -m venv --without-pip $venv" \
  --customize-hook="pip_wheel=\$(cd \"\$1/tmp/wheels\" && echo pip-*.whl) && \
    chroot \"\$1\" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin $venv/bin/python \
    \"/tmp/wheels/\$pip_wheel/pip\" install --quiet --no-index --no-cache-dir --find-links /tmp/wheels \
    egress-resolver==$version" \
  --customize-hook="printf '%s\n' 'root:x:0:0:root:/root:/bin/false' \
    'egress-resolver:x:$uid:$uid:egress-resolver:/nonexistent:/bin/false' > \"\$1/etc/passwd\"" \
  --customize-hook="printf '%s\n' 'root:x:0:' 'egress-resolver:x:$uid:' > \"\$1/etc/group\"" \
  "$suite" "$work/rootfs" "${sources[@]}" </dev/null
rootfs=$work/rootfs
rm -rf "$rootfs/tmp/wheels" "$rootfs/etc/apt" "$rootfs/var/lib/apt" "$rootfs/var/cache/apt" \
  "$rootfs/var/log/apt" "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
find "$rootfs/dev" "$rootfs/proc" "$rootfs/sys" -mindepth 1 -delete
# lupa ships a build for every Lua it supports; the sidecar loads lupa.lua54 only.
find "$rootfs$venv/lib/python3.11/site-packages/lupa" -name '*.so' ! -name 'lua54.*' -delete
# The volumes' mount points (mmdebstrap keeps /run a tmpfs while it runs hooks).
install -d -m 0750 -o "$uid" -g "$uid" "$rootfs/run/egress-resolver"
install -d -m 0755 "$rootfs/etc/egress-resolver"

umoci init --layout "$work/oci"
umoci new --image "$work/oci:$version"
umoci insert --image "$work/oci:$version" --history.created_by "mmdebstrap $suite + egress-resolver $version" \
  "$work/rootfs" /
umoci config --image "$work/oci:$version" \
  --os linux --architecture amd64 --author "egress-resolver" \
  --config.user "$uid:$uid" --config.workingdir / \
  --config.entrypoint "$venv/bin/egress-resolver" --config.cmd serve \
  --config.env "PATH=$venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --config.env PYTHONDONTWRITEBYTECODE=1 \
  --config.env EGRESS_RESOLVER_POLICY=/etc/egress-resolver/policy.lua \
  --config.env EGRESS_RESOLVER_LISTEN=unix:/run/egress-resolver/egress.sock \
  --config.env EGRESS_RESOLVER_UNIX_SOCKET_MODE=660 \
  --config.volume /run/egress-resolver --config.volume /etc/egress-resolver \
  --config.label "org.opencontainers.image.title=egress-resolver" \
  --config.label "org.opencontainers.image.version=$version"
umoci gc --layout "$work/oci"

mkdir -p "$(dirname "$output")"
"$python" "$here/archive.py" "$work/oci" "$version" "$tag" "$output"
