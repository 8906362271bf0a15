#!/usr/bin/env bash
# build.sh: build the mediabatch container image (deploy/container/Containerfile) without a
# registry (docs/operating.md, "Container image"):
#   1. a Debian 12 root filesystem made offline, by debootstrap (--variant=minbase) from the
#      Debian mirror in this host's apt sources, packed as a tarball in the cache directory
#      (made once, reused after);
#   2. imported as the base image (podman import), localhost/mediabatch-base:bookworm-HASH;
#   3. the Containerfile built on it by podman (buildah), from the files of the source tree
#      that git knows (build directories stay out).
#
# Usage: deploy/container/build.sh [options] [-- PODMAN_BUILD_ARGS...]
#   --tag NAME       the image's name (default localhost/mediabatch:VERSION-cpu, with --cuda
#                    localhost/mediabatch:VERSION-cuda; VERSION from meson.build). A CPU
#                    build is refused under the bare name deploy/kubernetes/ runs,
#                    [REGISTRY/]mediabatch:VERSION: its configuration says
#                    devices.cuda.mode: required, and a CPU image there stops at start
#                    (crash-loops); give Kubernetes the -cuda image (its overlay's images:)
#   --print-tag      print the name this would build and exit (needs neither root nor podman)
#   --cache DIR      where the root filesystem's tarball is kept (default
#                    ${XDG_CACHE_HOME:-~/.cache}/mediabatch-container)
#   --storage DIR    podman's image store (default: the host's, /var/lib/containers)
#   --cuda           a CUDA build (-Dcuda=enabled) with the host's toolkit, CUDA_ROOT
#                    (default /usr/local/cuda), mounted into the build stage read-only
#   --base-only      stop after the base image; print its name
# Needs root (debootstrap), debootstrap and podman (deploy/install-deps.sh installs them).
# MB_DEBIAN_MIRROR overrides the mirror; MB_OCI_RUNTIME podman's runtime (common.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/common.sh"

version=$(sed -n "s/^ *version: '\(.*\)',\$/\1/p" "$src/meson.build" | head -1)
tag=
print_tag=0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mediabatch-container
storage=
cuda=0
base_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--tag) tag=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--storage) storage=$2; shift 2 ;;
	--cuda) cuda=1; shift ;;
	--base-only) base_only=1; shift ;;
	--print-tag) print_tag=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "build.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
done

die() { echo "build.sh: $*" >&2; exit 1; }
# The image's name: the CPU and the CUDA build never share one, and the CPU build never takes
# the name deploy/kubernetes/ runs (devices.cuda.mode: required there).
if [ -z "$tag" ]; then
	if [ "$cuda" -eq 1 ]; then
		tag=localhost/mediabatch:${version:-latest}-cuda
	else
		tag=localhost/mediabatch:${version:-latest}-cpu
	fi
fi
if [ "$cuda" -eq 0 ] && [ -n "$version" ] &&
	{ [ "${tag##*/}" = "mediabatch:$version" ] || [ "$tag" = "mediabatch:$version" ]; }; then
	echo "build.sh: --tag $tag: a CPU image under the name deploy/kubernetes/ runs" \
		"(mediabatch:$version, devices.cuda.mode: required) would stop at start there;" \
		"name it ${tag}-cpu, or build it with --cuda" >&2
	exit 2
fi
if [ "$print_tag" -eq 1 ]; then
	echo "$tag"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, podman's image store)"
for c in debootstrap podman tar; do
	command -v "$c" >/dev/null || die "$c is not installed (deploy/install-deps.sh installs it)"
done
mb_podman_init "$storage"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# 1. the root filesystem, once per mirror
read -r mirror security < <(mb_debian_mirrors)
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*: set MB_DEBIAN_MIRROR"
arch=$(dpkg --print-architecture)
key=$(printf '%s %s %s' "$mirror" "$security" "$arch" | sha256sum | cut -c1-12)
tarball=$cache/debian-bookworm-minbase-$arch-$key.tar
if [ ! -s "$tarball" ]; then
	echo "build.sh: debootstrap --variant=minbase bookworm from $mirror (once; kept in $tarball)"
	work=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	keyring=()
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
		keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
	if ! debootstrap --variant=minbase "${keyring[@]}" bookworm "$work/root" "$mirror" \
		>"$work/debootstrap.log" 2>&1; then
		tail -20 "$work/debootstrap.log" >&2
		die "debootstrap failed (log above)"
	fi
	# the image's apt sources: the release, its updates and the security archive
	{
		echo "deb $mirror bookworm main"
		echo "deb $mirror bookworm-updates main"
		[ -n "$security" ] && echo "deb $security bookworm-security main"
	} >"$work/root/etc/apt/sources.list"
	# what an image does not keep: package lists and the downloaded packages
	rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/archives/"*.deb \
		"$work/root/var/log/"*.log
	tar --numeric-owner --xattrs -C "$work/root" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$work"
	trap - EXIT
fi

# 2. the base image, named after the tarball's contents
sum=$(sha256sum "$tarball" | cut -c1-12)
base=localhost/mediabatch-base:bookworm-$sum
if ! "${PODMAN[@]}" image exists "$base"; then
	echo "build.sh: importing $tarball as $base"
	"${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' "$tarball" "$base" >/dev/null
fi
if [ "$base_only" -eq 1 ]; then
	echo "$base"
	exit 0
fi

# 3. the image, from the source files git knows (tracked, and new ones not ignored)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/mediabatch-context.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
		tar -C "$src" --null -T - -cf - | tar -C "$ctx" -xf -
	# one time stamp for everything (the last commit's): podman's layer cache keys COPY on
	# the files' metadata too, and the directories made here would be new every time
	find "$ctx" -exec touch -h -d "@$(git -C "$src" log -1 --format=%ct 2>/dev/null || echo 0)" {} +
else
	# a source tarball: everything but build directories
	tar -C "$src" --exclude='./build*' --exclude='./.git' -cf - . | tar -C "$ctx" -xf -
fi
args=(--format docker --layers -f "$ctx/deploy/container/Containerfile"
	--build-arg "BASE=$base" --build-arg "VERSION=${version:-unknown}")
if [ "$cuda" -eq 1 ]; then
	cuda_root=$(realpath "${CUDA_ROOT:-/usr/local/cuda}")
	[ -x "$cuda_root/bin/nvcc" ] || die "--cuda: no nvcc in $cuda_root/bin (set CUDA_ROOT)"
	args+=(--build-arg MESON_CUDA=enabled --build-arg "CUDA_ROOT=$cuda_root"
		--volume "$cuda_root:$cuda_root:ro")
fi
echo "build.sh: ${PODMAN[*]} build ... -t $tag (base $base)"
"${PODMAN[@]}" build "${args[@]}" "$@" -t "$tag" "$ctx"
echo "build.sh: built $tag"
