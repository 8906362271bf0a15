#!/usr/bin/env bash
# runtime-libs.sh STAGING OUT: run in the build stage of deploy/container/Containerfile, after
# `meson install --destdir STAGING`. Writes to OUT the Debian packages that the runtime image
# must install: those of every shared library that an ELF file under STAGING loads (ldd, with
# STAGING's own library directories first; dpkg -S names the package), plus DPDK's mempool,
# bus and NIC drivers, which DPDK's EAL loads from its driver directory by itself (so ldd
# cannot see them; without the mempool driver no pool can be made). Libraries from the CUDA
# toolkit (CUDA_ROOT) are no Debian package: they are copied into
# STAGING/usr/local/lib/mediabatch-cuda, with an ld.so.conf.d entry. libcuda itself is the
# driver's, and comes from the host (the NVIDIA container runtime): it is never copied.
set -euo pipefail

staging=${1:?usage: runtime-libs.sh STAGING OUT}
out=${2:?usage: runtime-libs.sh STAGING OUT}
cuda_root=$(realpath -m "${CUDA_ROOT:-/usr/local/cuda}")

# DPDK's drivers in the image: the ones Debian's dpdk package recommends (the common NICs,
# af_packet, pcap, tap, virtio, vhost), plus the buses, ice/iavf (E810 and SR-IOV virtual
# functions: the Kubernetes SR-IOV attachment), ena and gve (AWS and GCP). One package each;
# the suffix is the ABI (23 in Debian 12), taken from the EAL the daemon links.
dpdk_drivers="mempool-ring bus-pci bus-vdev net-af-packet net-pcap net-tap net-ring net-null
	net-virtio net-vhost net-vmxnet3 net-e1000 net-ixgbe net-i40e net-ice net-iavf net-fm10k
	net-mlx4 net-mlx5 net-bond net-netvsc net-vdev-netvsc net-ena net-gve"

# the loader's path for ldd: STAGING's library directories, then the CUDA toolkit's (which a
# CUDA build links from there: the installed programs carry no rpath to it)
libdirs=$(find "$staging" -name '*.so*' -type f -printf '%h\n' | sort -u | paste -sd:)
for d in "$cuda_root/lib64" "$cuda_root/lib" "$cuda_root/targets/$(uname -m)-linux/lib"; do
	[ -d "$d" ] && libdirs=$libdirs${libdirs:+:}$d
done
declare -A pkgs=() cuda=() libs=() owner=()
missing=()

# every library that the staged ELF files load, once
while IFS= read -r -d '' f; do
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
	while read -r name arrow path _; do
		[ "$arrow" = "=>" ] || continue
		if [ "$path" = "not" ]; then
			# the CUDA driver: the NVIDIA container runtime brings it
			case $name in libcuda.so*|libnvidia-*) continue ;; esac
			missing+=("$f: $name")
			continue
		fi
		case $(realpath "$path") in
		"$staging"/*) ;;
		"$cuda_root"/*) cuda[$path]=1 ;;
		*) libs[$path]=1 ;;
		esac
	done < <(LD_LIBRARY_PATH=$libdirs ldd "$f" 2>/dev/null || true)
done < <(find "$staging" -type f -print0)

# their packages, with one dpkg -S. usrmerge: dpkg knows a file by the path its package
# ships (/lib/... or /usr/lib/...), while ldd prints the one ld.so found: ask for both, and
# for the file the link points to.
candidates() {
	local p=$1 real
	real=$(realpath "$p")
	printf '%s\n' "$p" "$real" "${p#/usr}" "/usr$p" "${real#/usr}" "/usr$real" | sort -u
}
while IFS= read -r line; do
	owner[${line#*: }]=${line%%:*}
done < <(for p in "${!libs[@]}"; do candidates "$p"; done | sort -u |
	xargs -r dpkg -S 2>/dev/null | grep -v '^diversion' || true)
for p in "${!libs[@]}"; do
	pkg=
	while read -r c; do
		[ -n "${owner[$c]:-}" ] && pkg=${owner[$c]} && break
	done < <(candidates "$p")
	if [ -n "$pkg" ]; then
		pkgs[$pkg]=1
	else
		missing+=("$p (no Debian package holds it)")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	printf 'runtime-libs: not resolved: %s\n' "${missing[@]}" >&2
	exit 1
fi

eal=$(printf '%s\n' "${!pkgs[@]}" | sed -n 's/^librte-eal\([0-9][0-9]*\)$/\1/p' | head -1)
if [ -n "$eal" ]; then
	for d in $dpdk_drivers; do
		case $d in *[0-9]) pkgs[librte-$d-$eal]=1 ;; *) pkgs[librte-$d$eal]=1 ;; esac
	done
fi

if [ "${#cuda[@]}" -gt 0 ]; then
	dest=$staging/usr/local/lib/mediabatch-cuda
	mkdir -p "$dest" "$staging/etc/ld.so.conf.d"
	for p in "${!cuda[@]}"; do
		cp -L "$p" "$dest/$(basename "$p")"
		# cuDNN loads its engine libraries (libcudnn_*.so.N) by itself
		case $(basename "$p") in
		libcudnn.so.*)
			for s in "$(dirname "$p")"/libcudnn_*"${p##*/libcudnn}"; do
				[ -e "$s" ] && cp -L "$s" "$dest/"
			done
			;;
		esac
	done
	echo /usr/local/lib/mediabatch-cuda >"$staging/etc/ld.so.conf.d/mediabatch-cuda.conf"
	echo "runtime-libs: CUDA libraries copied: $(ls "$dest" | paste -sd' ')"
fi

printf '%s\n' "${!pkgs[@]}" | sort >"$out"
echo "runtime-libs: $(wc -l <"$out") packages: $(paste -sd' ' "$out")"
