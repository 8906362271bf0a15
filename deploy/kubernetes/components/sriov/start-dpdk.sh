#!/bin/sh
# start-dpdk.sh: the entry point of mediabatchd with components/sriov (deploy/kubernetes/).
#
# Writes this pod's configuration, $MB_RUN_CONFIG (/run/mediabatch/mediabatch.yaml): the
# ConfigMap's mediabatch.yaml followed by its dpdk.yaml, with @VF_PCI@ replaced by the PCI
# address of the VF that the SR-IOV device plugin gave the pod (the environment variable
# named by MB_DPDK_PCI_ENV, e.g. PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK=0000:3b:02.1) and
# @VF_ADDRESS@ by the VF's IPv4 address: MB_UDP_ADDRESS when set, else the first address
# of network MB_DPDK_NETWORK in Multus's network-status annotation (a downward API file,
# which the kubelet may fill in only some seconds after the pod starts: wait for it).
# Then execs mediabatchd on it, with this script's arguments: it stays PID 1 and gets the
# SIGTERM that drains it.
set -eu

conf_dir=${MB_CONF_DIR:-/etc/mediabatch}
out=${MB_RUN_CONFIG:-/run/mediabatch/mediabatch.yaml}
daemon=${MB_DAEMON:-/usr/local/bin/mediabatchd}
pci_env=${MB_DPDK_PCI_ENV:-PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK}
network=${MB_DPDK_NETWORK:-mediabatch-dpdk}
status_file=${MB_NETWORK_STATUS:-/etc/podnetinfo/network-status}
wait_s=${MB_NETWORK_STATUS_WAIT_S:-120}

die() {
	echo "start-dpdk: $*" >&2
	exit 1
}

case $pci_env in
'' | [0-9]* | *[!A-Za-z0-9_]*) die "MB_DPDK_PCI_ENV: '$pci_env' is not a variable name" ;;
esac
eval "pci=\${$pci_env:-}"
[ -n "$pci" ] || die "$pci_env is not set: the SR-IOV device plugin gave this pod no VF (resources: intel.com/mediabatch_dpdk)"
pci=${pci%%,*} # several VFs: the first
case $pci in
[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F]:[0-9a-fA-F][0-9a-fA-F].[0-7]) ;;
*) die "$pci_env: '$pci' is not a PCI address (DDDD:BB:DD.F)" ;;
esac

# The first "ips" entry of the object whose "name" is NAMESPACE/NETWORK or NETWORK, in the
# JSON list of network-status (one object per attachment; "ips" follows "name" and
# "interface", before any nested object).
vf_address() {
	[ -r "$status_file" ] || return 0
	tr -d ' \t\r\n' <"$status_file" | sed 's/},{/}\n{/g' |
		sed -n "s|.*\"name\":\"\([^\"]*/\)\{0,1\}$network\"[^{}]*\"ips\":\[\"\([0-9.]*\)\".*|\2|p" | head -n 1
}

addr=${MB_UDP_ADDRESS:-}
if [ -z "$addr" ]; then
	waited=0
	while addr=$(vf_address) && [ -z "$addr" ]; do
		[ "$waited" -lt "$wait_s" ] ||
			die "no IPv4 address for network '$network' in $status_file after ${wait_s} s (is the pod annotated k8s.v1.cni.cncf.io/networks: $network, and does its IPAM give one?); set MB_UDP_ADDRESS to give it yourself"
		[ "$waited" -eq 0 ] && echo "start-dpdk: waiting for network-status of '$network' in $status_file" >&2
		sleep 1
		waited=$((waited + 1))
	done
fi
case $addr in
*[!0-9.]* | .* | *. | *..*) die "the VF's address '$addr' is not an IPv4 address" ;;
*.*.*.*) ;;
*) die "the VF's address '$addr' is not an IPv4 address" ;;
esac

{
	cat "$conf_dir/mediabatch.yaml"
	sed -e "s/@VF_PCI@/$pci/g" -e "s/@VF_ADDRESS@/$addr/g" "$conf_dir/dpdk.yaml"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "start-dpdk: VF $pci ($pci_env), address $addr: $out" >&2
exec "$daemon" --config "$out" "$@"
