#!/usr/bin/env bash
# container_test.sh: the container image of deploy/container/ built and run as an operator
# would (docs/operating.md, "Container image"). deploy/container/build.sh makes a Debian 12
# root filesystem with debootstrap from the host's Debian mirror, imports it as the base and
# builds the Containerfile with podman. The image must then: run as a user other than root,
# hold no compiler, headers, static libraries or pkg-config files, expose 7400-7402 with a
# HEALTHCHECK; and its daemon, started by the image's own entrypoint and config, must come
# ready (/readyz 200), answer a whisper request from the image's CLI (so the placeholder
# weights are found), pass the HEALTHCHECK, and drain on `podman stop` to exit 0.
#
# The container runs with --network none: all traffic is on the loopback of its own network
# namespace. Where no container can run (podman's runtime refuses this host), or with
# MB_CONTAINER_MODE=chroot, the image is built with --isolation chroot and its root
# filesystem run in a chroot under unshare (its own network, PID and mount namespaces) as the
# image's user, with the same checks; the output says which.
#
# Cache (MB_CONTAINER_CACHE, default BUILD/container-cache): the debootstrap tarball and
# podman's store with its layer cache, so that a rerun rebuilds only what changed. Skips (77)
# when not root, without podman or debootstrap, or when the Debian mirror cannot be reached.
set -u

build=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}
src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
cache=${MB_CONTAINER_CACHE:-$build/container-cache}
mode=${MB_CONTAINER_MODE:-auto}
tag=localhost/mediabatch:test
ctr=mediabatch-test-$$
tmp=$(mktemp -d)
started=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ -f "$tmp/daemon.log" ] && sed 's/^/  daemon: /' "$tmp/daemon.log" | tail -40
	exit 1
}
elapsed() { echo "$(($(date +%s) - started)) s"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, podman's image store, namespaces)"
for c in podman debootstrap; do
	command -v "$c" >/dev/null || skip "$c not installed (deploy/install-deps.sh installs it)"
done
. "$src/deploy/container/common.sh"
read -r mirror _ < <(mb_debian_mirrors)
[ -n "$mirror" ] || skip "no Debian mirror in /etc/apt/sources.list*"
python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/dists/bookworm/Release', timeout=15)" \
	"$mirror" 2>/dev/null || skip "the Debian mirror $mirror cannot be reached"

mkdir -p "$cache"
# podman's store under the cache grows by the layers of each changed build: past 8 GiB,
# start it again (the next build is then a cold one)
if [ -d "$cache/storage" ] && [ "$(du -sxm "$cache/storage" | cut -f1)" -gt 8192 ]; then
	echo "the cached image store is over 8 GiB: emptied"
	mb_podman_init "$cache/storage"
	"${PODMAN[@]}" system reset --force >/dev/null 2>&1
	rm -rf "$cache/storage"
fi
mb_podman_init "$cache/storage"

cleanup() {
	"${PODMAN[@]}" rm --force --time 0 "$ctr" >/dev/null 2>&1
	[ -n "${rootfs_pid:-}" ] && kill -KILL "$rootfs_pid" 2>/dev/null
	[ -n "${mounted:-}" ] && umount -R "$tmp/rootfs" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# Can a container run here? (the base image is needed to try)
base=$("$src/deploy/container/build.sh" --cache "$cache" --storage "$cache/storage" --base-only \
	2>"$tmp/base.log" | tail -1) || { cat "$tmp/base.log"; fail "the base image (debootstrap, import)"; }
echo "base image $base ready after $(elapsed)"
if [ "$mode" = auto ]; then
	if "${PODMAN[@]}" run --rm --network none "${MB_LIMITS[@]}" "$base" true >"$tmp/probe.log" 2>&1; then
		mode=podman
	else
		mode=chroot
		echo "no container can run here ($(tail -1 "$tmp/probe.log")):"
		echo "the image is built with --isolation chroot and its root filesystem run in a chroot"
	fi
fi
build_args=()
[ "$mode" = chroot ] && build_args=(-- --isolation chroot)
echo "mode: $mode (${PODMAN[*]})"

"$src/deploy/container/build.sh" --cache "$cache" --storage "$cache/storage" --tag "$tag" \
	"${build_args[@]}" >"$tmp/build.log" 2>&1 || { tail -60 "$tmp/build.log"; fail "build.sh"; }
grep '^runtime-libs:' "$tmp/build.log"
echo "image $tag built after $(elapsed)"
"${PODMAN[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$tag"

# the image's metadata
cfg=$("${PODMAN[@]}" image inspect --format \
	'user={{.Config.User}} entrypoint={{json .Config.Entrypoint}} ports={{json .Config.ExposedPorts}} health={{json .Config.Healthcheck}}' \
	"$tag") || fail "podman image inspect"
echo "$cfg"
case $cfg in *"user=mediabatch "*) ;; *) fail "the image's user is not mediabatch: $cfg" ;; esac
case $cfg in *'entrypoint=["/usr/local/bin/mediabatchd"]'*) ;; *) fail "entrypoint: $cfg" ;; esac
for p in 7400 7401 7402; do
	case $cfg in *"\"$p/tcp\""*) ;; *) fail "port $p/tcp not exposed: $cfg" ;; esac
done
case $cfg in *healthz*) ;; *) fail "no HEALTHCHECK on /healthz: $cfg" ;; esac

# the build stage's packages are deploy/install-deps.sh's (the one list of dependencies)
for p in $(sed -n '/^RUN apt-get update -qq && apt-get install/,/rm -rf/p' \
	"$src/deploy/container/Containerfile" | tr ' \t\\' '\n\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' |
	grep -vE '^(apt-get|update|install|rm|rf|qq|y)$'); do
	grep -qE "^[[:space:]]*([a-z0-9.+-]+[[:space:]]+)*$p([[:space:]]|$)" "$src/deploy/install-deps.sh" ||
		fail "the Containerfile installs $p, which deploy/install-deps.sh does not list"
done

# what is inside, and what is not
inside='set -u
for f in /usr/local/bin/mediabatchd /usr/local/bin/mediabatch /usr/local/bin/mediabatch-weights \
	/etc/mediabatch/mediabatch.yaml /var/lib/mediabatch/weights/whisper/config.json; do
	[ -e "$f" ] || { echo "missing: $f"; exit 1; }
done
# (base-files ships /usr/include, empty)
h=$(find /usr/include /usr/local/include /usr/lib/gcc -type f 2>/dev/null | head -3)
[ -z "$h" ] || { echo "headers or compiler files: $h"; exit 1; }
for c in gcc cc c99 g++ clang ld as cpp make meson ninja pkg-config nvcc; do
	command -v "$c" >/dev/null && { echo "a build tool: $c"; exit 1; }
done
a=$(find / -xdev -name "*.a" -type f 2>/dev/null | head -3)
[ -z "$a" ] || { echo "static libraries: $a"; exit 1; }
a=$(find /usr/local -name "*.pc" 2>/dev/null | head -3)
[ -z "$a" ] || { echo "pkg-config files of the build: $a"; exit 1; }
[ "$(id -u)" -ne 0 ] || { echo "runs as root"; exit 1; }
echo "inside: programs, config and weights present; no compiler, headers, static libraries; user $(id -un) ($(id -u))"'

if [ "$mode" = podman ]; then
	out=$("${PODMAN[@]}" run --rm --network none --no-healthcheck "${MB_LIMITS[@]}" \
		--entrypoint /bin/bash "$tag" \
		-c "$inside" 2>&1) || fail "$out"
	echo "$out"
	# the daemon, from the image's entrypoint and config; no timer for the HEALTHCHECK (it
	# is run by hand below; without systemd podman says so on stderr, harmlessly)
	# a read-only root, as Kubernetes' readOnlyRootFilesystem (podman mounts a tmpfs on /tmp)
	"${PODMAN[@]}" run -d --name "$ctr" --network none --read-only --health-interval disable \
		"${MB_LIMITS[@]}" "$tag" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; fail "podman run"; }
	in_image() { "${PODMAN[@]}" exec "$ctr" "$@"; }
	alive() { [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$ctr" 2>/dev/null)" = true ]; }
	daemon_log() { "${PODMAN[@]}" logs "$ctr" >"$tmp/daemon.log" 2>&1; }
	daemon_pid() { "${PODMAN[@]}" inspect --format '{{.State.Pid}}' "$ctr"; }
else
	# the image's root filesystem, as the container would see it
	"${PODMAN[@]}" create --name "$ctr" "$tag" >/dev/null || fail "podman create"
	mkdir "$tmp/rootfs"
	"${PODMAN[@]}" export "$ctr" | tar -C "$tmp/rootfs" -xf - || fail "podman export"
	"${PODMAN[@]}" rm "$ctr" >/dev/null 2>&1
	user=$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$tag")
	uid=$(chroot "$tmp/rootfs" id -u "$user") || fail "no user $user in the image"
	gid=$(chroot "$tmp/rootfs" id -g "$user")
	# the image's environment (after a default PATH, which podman would add) and command
	mapfile -t envs < <(echo PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		"${PODMAN[@]}" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$tag" | grep .)
	mapfile -t cmd < <("${PODMAN[@]}" image inspect --format \
		'{{range .Config.Entrypoint}}{{println .}}{{end}}{{range .Config.Cmd}}{{println .}}{{end}}' "$tag" | grep .)
	workdir=$("${PODMAN[@]}" image inspect --format '{{.Config.WorkingDir}}' "$tag")
	# what a runtime gives: /dev (null, zero, random, urandom, a tmpfs /dev/shm), a tmpfs /tmp,
	# a read-only root, and (in the daemon's mount namespace, below) its own /proc and /sys
	mount --bind "$tmp/rootfs" "$tmp/rootfs" && mounted=1
	mkdir -p "$tmp/rootfs/proc" "$tmp/rootfs/sys" "$tmp/rootfs/dev" "$tmp/rootfs/tmp"
	mount -t tmpfs -o mode=755 dev "$tmp/rootfs/dev"
	for d in null zero random urandom; do
		touch "$tmp/rootfs/dev/$d" && mount --bind "/dev/$d" "$tmp/rootfs/dev/$d"
	done
	mkdir "$tmp/rootfs/dev/shm" && mount -t tmpfs -o mode=1777 shm "$tmp/rootfs/dev/shm"
	mount -t tmpfs -o mode=1777 tmp "$tmp/rootfs/tmp"
	mount -o remount,bind,ro "$tmp/rootfs" # a read-only root, as in the podman run
	as_user=(chroot --userspec="$uid:$gid" "$tmp/rootfs" env -i "${envs[@]}")
	out=$("${as_user[@]}" /bin/bash -c "$inside" 2>&1) || fail "$out"
	echo "$out"
	# the daemon in namespaces of its own: network (loopback only), PID (it is PID 1, as in
	# a container) and mounts (a /proc of that PID namespace, a read-only /sys as podman
	# gives: DPDK's EAL reads the CPUs there)
	unshare --net --pid --fork --mount /bin/bash -c '
		root=$1
		shift
		ip link set lo up && mount -t proc proc "$root/proc" &&
			mount -t sysfs -o ro sysfs "$root/sys" && exec "$@"' _ "$tmp/rootfs" \
		"${as_user[@]}" /bin/sh -c 'cd "$0" && exec "$@"' "$workdir" "${cmd[@]}" \
		>"$tmp/daemon.log" 2>&1 &
	rootfs_pid=$!
	daemon_pid() { pgrep -P "$rootfs_pid" | head -1; }
	in_image() {
		nsenter --target "$(daemon_pid)" --net --pid --mount -- "${as_user[@]}" "$@"
	}
	alive() { kill -0 "$rootfs_pid" 2>/dev/null; }
	daemon_log() { :; }
fi

# /readyz from inside (bash's /dev/tcp: the image has no HTTP client), within 60 s
http_get() {
	in_image /bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/7402 &&
		printf "GET %s HTTP/1.0\r\n\r\n" "$1" >&3 && timeout 5 cat <&3' _ "$1" 2>/dev/null
}
ready=0
for _ in $(seq 1 120); do
	if http_get /readyz | head -1 | grep -q ' 200 '; then
		ready=1
		break
	fi
	alive || { daemon_log; fail "the daemon exited during start-up"; }
	sleep 0.5
done
daemon_log
[ "$ready" -eq 1 ] || fail "the daemon in the image not ready after 60 s: $(http_get /readyz | tail -1)"
echo "daemon ready after $(elapsed): $(grep -o 'mediabatchd [0-9.]* ready.*' "$tmp/daemon.log" | cut -c1-160)"
out=$(in_image timeout 60 mediabatch send --model whisper --tone 440 2>&1) ||
	fail "whisper through the image's CLI: $out"
echo "$out" | grep -q "whisper: OK " || fail "whisper not answered OK: $out"
echo "the image's CLI: $out"

# the daemon's own process runs as the image's user, not root
pid=$(daemon_pid)
[ -n "$pid" ] && [ -r "/proc/$pid/status" ] || fail "no daemon process"
uids=$(awk '/^Uid:/ { print $2, $3 }' "/proc/$pid/status")
[ "$uids" != "0 0" ] && [ "${uids%% *}" -ne 0 ] || fail "the daemon runs as root (uid $uids)"
echo "daemon process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline"), uid $uids"

if [ "$mode" = podman ]; then
	"${PODMAN[@]}" healthcheck run "$ctr" >"$tmp/health.log" 2>&1 ||
		fail "the image's HEALTHCHECK failed: $(cat "$tmp/health.log")"
	echo "HEALTHCHECK: healthy"
	# podman stop: SIGTERM (the image's STOPSIGNAL), a drain, exit 0
	"${PODMAN[@]}" stop --time 30 "$ctr" >"$tmp/stop.log" 2>&1 ||
		fail "podman stop: $(cat "$tmp/stop.log")"
	rc=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$ctr")
	daemon_log
else
	kill -TERM "$(daemon_pid)"
	wait "$rootfs_pid"
	rc=$?
	rootfs_pid=
fi
[ "$rc" = 0 ] || fail "stopped with exit $rc, not 0 after a drain"
grep -q "drain" "$tmp/daemon.log" || fail "no drain in the daemon's log"
echo "stopped: drained, exit 0"
echo "container test ($mode): passed in $(elapsed)"
