# common.sh: sourced by deploy/container/build.sh and tests/deploy/container_test.sh. How
# podman is run on this host: mb_podman_init [STORAGE_DIR] sets the array PODMAN (podman and
# its global options) and the array MB_LIMITS (the --ulimit options of podman run).
#
# - STORAGE_DIR: images and containers under STORAGE_DIR/root (and run state under
#   /run/mediabatch-podman.HASH) instead of the host's /var/lib/containers; a test's images
#   then stay out of everyone else's way and its cache is reused from run to run.
# - The OCI runtime: podman's default (crun) unless the host mounts cgroups in the "hybrid"
#   layout (v1 controllers plus a v2 hierarchy that has controllers too), which crun refuses
#   ("cgroups in hybrid mode not supported"); runc runs there. MB_OCI_RUNTIME overrides.
# - Resource limits: podman gives a root container RLIMIT_NOFILE and RLIMIT_NPROC of about a
#   million, which a host without CAP_SYS_RESOURCE (or with lower hard limits) cannot grant
#   ("setrlimit RLIMIT_NOFILE: Operation not permitted"); the container gets this shell's
#   hard limits instead. (podman build is left alone: its RUN steps get 1024 and 32768,
#   which any host grants, and cannot be raised past them.)

mb_podman_init() {
	local storage=${1:-} runtime=${MB_OCI_RUNTIME:-} n u
	PODMAN=(podman)
	if [ -n "$storage" ]; then
		mkdir -p "$storage/root"
		# run state on a short path of its own (podman puts sockets there)
		n=$(printf '%s' "$(realpath "$storage")" | sha256sum | cut -c1-12)
		PODMAN+=(--root "$(realpath "$storage")/root" --runroot "/run/mediabatch-podman.$n")
	fi
	if [ -z "$runtime" ] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ] &&
		[ -d /sys/fs/cgroup/memory ] && command -v runc >/dev/null; then
		runtime=runc
	fi
	[ -n "$runtime" ] && PODMAN+=(--runtime "$runtime")
	n=$(ulimit -Hn)
	u=$(ulimit -Hu)
	[ "$n" = unlimited ] && n=1048576
	# podman itself runs with RLIMIT_NPROC 32768 (buildah's default), so no more for its
	# containers
	[ "$u" = unlimited ] || [ "$u" -gt 32768 ] && u=32768
	MB_LIMITS=(--ulimit "nofile=$n:$n" --ulimit "nproc=$u:$u")
}

# mb_debian_mirrors: prints "MIRROR SECURITY_MIRROR" from the host's apt sources (the
# deb822 .sources files and one-line .list files): the URI that serves bookworm (or the
# first Debian one) and the one that serves bookworm-security (empty if none).
# MB_DEBIAN_MIRROR and MB_DEBIAN_SECURITY_MIRROR override them.
mb_debian_mirrors() {
	local f mirror="" security=""
	mirror=${MB_DEBIAN_MIRROR:-}
	security=${MB_DEBIAN_SECURITY_MIRROR:-}
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		case $f in
		*.sources)
			# deb822 stanzas: URIs: and Suites: of each
			awk 'BEGIN { RS = ""; FS = "\n" }
			{ u = ""; s = ""; t = ""
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
				if ($i ~ /^Suites:/) { s = $i; sub(/^Suites:[ \t]*/, "", s) }
				if ($i ~ /^Types:/) { t = $i }
			  }
			  if (t ~ /deb( |$)/ || t == "") { n = split(s, a, /[ \t]+/); for (j = 1; j <= n; j++) print u, a[j] }
			}' "$f"
			;;
		*)
			sed -n 's/^deb[ \t]\+\(\[[^]]*\][ \t]\+\)\?\([^ \t]\+\)[ \t]\+\([^ \t]\+\).*/\2 \3/p' "$f"
			;;
		esac
	done >"${TMPDIR:-/tmp}/mb-mirrors.$$"
	[ -n "$mirror" ] || mirror=$(awk '$2 == "bookworm" { print $1; exit }' "${TMPDIR:-/tmp}/mb-mirrors.$$")
	[ -n "$mirror" ] || mirror=$(awk '$1 ~ /debian\/?$/ { print $1; exit }' "${TMPDIR:-/tmp}/mb-mirrors.$$")
	[ -n "$security" ] || security=$(awk '$2 == "bookworm-security" { print $1; exit }' "${TMPDIR:-/tmp}/mb-mirrors.$$")
	rm -f "${TMPDIR:-/tmp}/mb-mirrors.$$"
	echo "${mirror%/} ${security%/}"
}
