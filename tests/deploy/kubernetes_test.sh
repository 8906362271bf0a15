#!/usr/bin/env bash
# kubernetes_test.sh: the Kubernetes manifests of deploy/kubernetes/, checked offline
# (docs/operating.md, "Kubernetes"):
#
#  1. the validator's pinned npm packages (tests/deploy/k8s/package-lock.json) installed with
#     `npm ci` into BUILD/k8s-validate (again only when the lock file changes);
#  2. tests/deploy/k8s/validate.mjs on the tree: every kustomization rendered (and compared
#     with `kubectl kustomize` where kubectl is installed), every object validated against the
#     Kubernetes 1.33 API schemas in strict mode, and our invariants (QoS, drain, ports, key
#     modes, SR-IOV pieces, the ServiceMonitor's job label = the one the alert rules of
#     deploy/prometheus/mediabatch-rules.yml select); then the image name: build.sh's CPU image
#     never takes the name the DaemonSet runs (devices.cuda.mode: required), and is refused it;
#  3. the ConfigMap's configuration through the real `mediabatchd --check` (the base's, and the
#     SR-IOV one as start-dpdk.sh writes it from a VF's PCI address and Multus's network-status),
#     start-dpdk.sh's refusals, and the Secret template's placeholders refused by the daemon;
#  4. the validator itself: copies of deploy/kubernetes/, each broken in one way, must each
#     fail with the expected message, so that the check cannot pass by checking nothing.
#
# Needs node (18 or later) and npm (deploy/install-deps.sh) and the npm registry at step 1;
# skips (77) without node or npm. Traffic: none (no daemon is started; --check only).
set -u

src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
build=${MB_BUILD_ROOT:?set MB_BUILD_ROOT to the build directory}
daemon=${MB_DAEMON:-$build/mediabatchd}
cli=${MB_CLI:-$build/mediabatch}
k8s=$src/deploy/kubernetes
here=$src/tests/deploy/k8s
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() {
	echo "ok: $*"
	passed=$((passed + 1))
}
bad() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: no $tool (deploy/install-deps.sh installs nodejs and npm)"
		exit 77
	fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
	echo "SKIP: node $(node --version): the validator needs node 18 or later"
	exit 77
fi

# --- 1. the validator's packages, pinned --------------------------------------------------
venv=$build/k8s-validate
stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$venv"
	mkdir -p "$venv"
	cp "$here/package.json" "$here/package-lock.json" "$venv/"
	t0=$(date +%s)
	if ! (cd "$venv" && npm ci --cache "$venv/.npm-cache" --no-audit --no-fund --ignore-scripts \
		--loglevel=error) >"$tmp/npm.log" 2>&1; then
		cat "$tmp/npm.log"
		bad "npm ci of tests/deploy/k8s/package-lock.json (the npm registry must be reachable)"
		finish
	fi
	echo "$stamp" >"$venv/.stamp"
	ok "npm ci: the validator's pinned packages in $(($(date +%s) - t0)) s"
else
	ok "npm packages already installed in $venv"
fi
cp "$here/validate.mjs" "$venv/"

# --- 2. the manifests ---------------------------------------------------------------------
if node "$venv/validate.mjs" --root "$src" --out "$tmp/out" >"$tmp/validate.log" 2>&1; then
	cat "$tmp/validate.log"
	ok "deploy/kubernetes: rendered, valid against the API schemas (strict), invariants hold"
else
	cat "$tmp/validate.log"
	bad "deploy/kubernetes does not validate"
	finish
fi

# --- 2b. the image name: deploy/container/build.sh's CPU image never takes the name the
# DaemonSet runs (whose configuration says devices.cuda.mode: required) ------------------
img=$(sed -n 's/^ *image: *//p' "$k8s/base/daemonset.yaml" | sort -u)
cpu_tag=$(bash "$src/deploy/container/build.sh" --print-tag 2>&1)
cuda_tag=$(bash "$src/deploy/container/build.sh" --cuda --print-tag 2>&1)
if [ "$(printf '%s\n' "$img" | wc -l)" -ne 1 ] || [ -z "$img" ]; then
	bad "base/daemonset.yaml: one image name expected, found: $img"
elif [ "${cpu_tag##*/}" = "$img" ] || [ "$cpu_tag" = "$cuda_tag" ]; then
	bad "deploy/container/build.sh's CPU image is $cpu_tag (CUDA: $cuda_tag): the DaemonSet runs $img with CUDA required"
elif bash "$src/deploy/container/build.sh" --tag "localhost/$img" --print-tag >/dev/null 2>"$tmp/tag.log" ||
	! grep -q 'devices.cuda.mode: required' "$tmp/tag.log"; then
	cat "$tmp/tag.log"
	bad "deploy/container/build.sh accepts a CPU image named localhost/$img, the name the DaemonSet runs"
else
	ok "image names: the DaemonSet runs $img; build.sh makes $cpu_tag (CPU) and $cuda_tag (--cuda), and refuses a CPU image named localhost/$img"
fi

# --- 3. the configuration, by the daemon itself -------------------------------------------
if [ ! -x "$daemon" ] || [ ! -x "$cli" ]; then
	bad "no $daemon or $cli to check the ConfigMap's configuration with"
else
	mkdir -p "$tmp/keys"
	if ! { "$cli" keygen "$tmp/keys/server" && "$cli" keygen "$tmp/keys/operator"; } >/dev/null; then
		bad "mediabatch keygen"
	fi
	# The pod's paths made this machine's: the keys' copy, and the build's placeholder weights
	# (weights_dir "" = beside the binary).
	here_paths() {
		sed -e "s#/run/mediabatch/keys/#$1/#g" -e 's#^weights_dir: .*#weights_dir: ""#' "$2"
	}
	here_paths "$tmp/keys" "$tmp/out/default/config/mediabatch.yaml" >"$tmp/default.yaml"
	if "$daemon" --config "$tmp/default.yaml" --check >"$tmp/check.log" 2>&1 &&
		grep -q 'security: CURVE on tcp://0.0.0.0:7400' "$tmp/check.log"; then
		ok "mediabatchd --check accepts the base ConfigMap's mediabatch.yaml (CURVE, every model loads)"
	else
		cat "$tmp/check.log"
		bad "mediabatchd --check refuses the base ConfigMap's mediabatch.yaml"
	fi

	# start-dpdk.sh as the pod runs it (components/sriov), with a VF and network-status as the
	# SR-IOV device plugin and Multus give them, and mediabatchd --check instead of a start.
	mkdir -p "$tmp/sriov"
	here_paths "$tmp/keys" "$tmp/out/sriov/config/mediabatch.yaml" >"$tmp/sriov/mediabatch.yaml"
	cp "$tmp/out/sriov/config/dpdk.yaml" "$tmp/sriov/"
	cat >"$tmp/network-status" <<-'EOF'
		[{
		    "name": "cbr0",
		    "interface": "eth0",
		    "ips": [
		        "10.244.1.5"
		    ],
		    "mac": "0a:58:0a:f4:01:05",
		    "default": true,
		    "dns": {}
		},{
		    "name": "mediabatch/mediabatch-dpdk",
		    "interface": "net1",
		    "ips": [
		        "192.0.2.10"
		    ],
		    "dns": {},
		    "device-info": {
		        "type": "pci",
		        "version": "1.1.0",
		        "pci": {
		            "pci-address": "0000:3b:02.1"
		        }
		    }
		}]
	EOF
	start_dpdk() {
		env MB_CONF_DIR="$tmp/sriov" MB_RUN_CONFIG="$tmp/sriov/run.yaml" MB_DAEMON="$daemon" \
			MB_NETWORK_STATUS="$tmp/network-status" MB_DPDK_NETWORK=mediabatch-dpdk \
			MB_DPDK_PCI_ENV=PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK "$@" \
			sh "$tmp/out/sriov/config/start-dpdk.sh" --check
	}
	if start_dpdk PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK=0000:3b:02.1 >"$tmp/sriov.log" 2>&1 &&
		grep -q 'configuration is valid' "$tmp/sriov.log" &&
		grep -q '"-a", "0000:3b:02.1"' "$tmp/sriov/run.yaml" &&
		grep -q 'device: "0000:3b:02.1"' "$tmp/sriov/run.yaml" &&
		grep -q 'address: "192.0.2.10"' "$tmp/sriov/run.yaml"; then
		ok "start-dpdk.sh: the VF 0000:3b:02.1 and its address 192.0.2.10 (network-status) in a configuration mediabatchd --check accepts"
	else
		cat "$tmp/sriov.log"
		bad "start-dpdk.sh with a VF and network-status"
	fi
	if start_dpdk PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK=0000:3b:02.1,0000:3b:02.2 MB_UDP_ADDRESS=198.51.100.7 \
		>"$tmp/sriov.log" 2>&1 && grep -q 'address: "198.51.100.7"' "$tmp/sriov/run.yaml" &&
		grep -q 'device: "0000:3b:02.1"' "$tmp/sriov/run.yaml"; then
		ok "start-dpdk.sh: MB_UDP_ADDRESS wins over network-status; of several VFs the first"
	else
		cat "$tmp/sriov.log"
		bad "start-dpdk.sh with MB_UDP_ADDRESS"
	fi
	if ! start_dpdk >"$tmp/sriov.log" 2>&1 && grep -q 'gave this pod no VF' "$tmp/sriov.log"; then
		ok "start-dpdk.sh refuses to start without a VF: $(cat "$tmp/sriov.log")"
	else
		cat "$tmp/sriov.log"
		bad "start-dpdk.sh without a VF"
	fi
	if ! start_dpdk PCIDEVICE_INTEL_COM_MEDIABATCH_DPDK=0000:3b:02.1 MB_DPDK_NETWORK=other \
		MB_NETWORK_STATUS_WAIT_S=1 >"$tmp/sriov.log" 2>&1 && grep -q 'no IPv4 address' "$tmp/sriov.log"; then
		ok "start-dpdk.sh gives up when network-status never names the network"
	else
		cat "$tmp/sriov.log"
		bad "start-dpdk.sh without the network in network-status"
	fi

	# The Secret template's placeholders are not keys: the daemon must refuse them.
	mkdir -p "$tmp/placeholder"
	cp "$tmp/out/secret-example/"* "$tmp/placeholder/"
	chmod 600 "$tmp/placeholder/"*
	here_paths "$tmp/placeholder" "$tmp/out/default/config/mediabatch.yaml" >"$tmp/placeholder.yaml"
	"$daemon" --config "$tmp/placeholder.yaml" --check >"$tmp/check.log" 2>&1
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q 'server_key' "$tmp/check.log"; then
		ok "mediabatchd refuses curve-secret.example.yaml's placeholders: $(head -n 1 "$tmp/check.log")"
	else
		cat "$tmp/check.log"
		bad "mediabatchd --check with the Secret template's placeholders: exit $rc, expected 2"
	fi
fi

# --- 4. the validator fails on broken manifests ------------------------------------------
# NAME|FILE (under deploy/kubernetes; ../prometheus/ for the alert rules)|sed script|what the validator must say
mutations=(
	"unknown field|base/daemonset.yaml|s/^          image: mediabatch:0.1.0\$/&\n          imagePullPolicyy: Always/|imagePullPolicyy: unknown field"
	"wrong type|base/daemonset.yaml|s/containerPort: 7402/containerPort: \"7402\"/|containerPort must be integer"
	"grace period too short|base/daemonset.yaml|s/terminationGracePeriodSeconds: 45/terminationGracePeriodSeconds: 25/|terminationGracePeriodSeconds 25 must exceed"
	"drain timeout past the grace period|base/mediabatch.yaml|s/drain_timeout_ms: 20000/drain_timeout_ms: 60000/|drain_timeout_ms 60000"
	"fractional CPU|base/daemonset.yaml|s/cpu: \"8\"/cpu: 7500m/|whole number of CPUs"
	"requests below limits|base/daemonset.yaml|0,/memory: 32Gi/s//memory: 16Gi/|must equal its limits"
	"readiness probe on another port|base/daemonset.yaml|/path: \\/readyz/{n;s/port: metrics/port: 8080/}|readinessProbe: port 8080"
	"metrics port moved in the ConfigMap only|base/mediabatch.yaml|s/metrics: 0.0.0.0:7402/metrics: 0.0.0.0:9402/|service.metrics"
	"ZeroMQ on loopback|base/mediabatch.yaml|s#ingest: tcp://0.0.0.0:7400#ingest: tcp://127.0.0.1:7400#|bind all interfaces"
	"Secret readable by all|base/daemonset.yaml|s/defaultMode: 0400/defaultMode: 0644/|must be 0400 or 0600"
	"key copy readable by all|base/daemonset.yaml|s/install -m 0600/install -m 0644/|install -m 0600"
	"scrape annotation port|base/daemonset.yaml|s/prometheus.io\\/port: \"7402\"/prometheus.io\\/port: \"9090\"/|prometheus.io/port 9090"
	"ServiceMonitor port|components/prometheus-operator/servicemonitor.yaml|s/- port: metrics/- port: http/|ServiceMonitor endpoint port http"
	"ServiceMonitor without the job relabeling|components/prometheus-operator/servicemonitor.yaml|/relabelings:/,/replacement: mediabatch/d|its targets get job=\"mediabatchd\" (the Service's name"
	"alert rules of another job|../prometheus/mediabatch-rules.yml|s/job=\"mediabatch\"/job=\"mb\"/g|mediabatch-rules.yml selects job=\"mb\": no alert would fire"
	"Service not headless|base/service.yaml|/clusterIP: None/d|headless"
	"no GPU|base/daemonset.yaml|/nvidia.com\\/gpu: \"1\"/d|nvidia.com/gpu"
	"capability DPDK does not need|components/sriov/daemonset-patch.yaml|s/add: \\[IPC_LOCK\\]/add: [IPC_LOCK, SYS_ADMIN]/|capability SYS_ADMIN"
	"patch of the wrong container|components/sriov/daemonset-patch.yaml|0,/value: mediabatchd/s//value: other/|Test operation failed"
	"kustomization typo|base/kustomization.yaml|s/^resources:/resource:/|'resource' is not a field"
	"manifest left out of the kustomization|base/kustomization.yaml|/- service.yaml/d|no kustomization uses, so nothing checks: deploy/kubernetes/base/service.yaml"
	"real key in the template|base/curve-secret.example.yaml|0,/REPLACE-WITH-THE-40-CHARACTER-Z85-KEY!!/s//0123456789abcdefghij0123456789abcdefghij/|looks like a real key"
)
roots=()
for i in "${!mutations[@]}"; do
	IFS='|' read -r name file script expect <<<"${mutations[$i]}"
	root=$tmp/bad$i
	mkdir -p "$root/deploy"
	cp -r "$k8s" "$src/deploy/prometheus" "$root/deploy/"
	sed -i "$script" "$root/deploy/kubernetes/$file"
	if cmp -s "$k8s/$file" "$root/deploy/kubernetes/$file"; then
		bad "mutation '$name' changed nothing in $file (fix its sed script)"
		continue
	fi
	roots+=(--root "$root")
done
node "$venv/validate.mjs" --no-kubectl "${roots[@]}" >"$tmp/broken.log" 2>&1
for i in "${!mutations[@]}"; do
	IFS='|' read -r name file _ expect <<<"${mutations[$i]}"
	root=$tmp/bad$i
	# this root's section of the log: its FAIL line and the indented lines after it
	section=$(awk -v r="$root: " 'index($0, r) == 1 { on = 1; print; next } on && /^  / { print; next } { on = 0 }' "$tmp/broken.log")
	if ! grep -q "^$root: FAIL" <<<"$section"; then
		echo "$section"
		bad "the validator accepted a broken manifest: $name ($file)"
	elif ! grep -qF -- "$expect" <<<"$section"; then
		echo "$section"
		bad "broken manifest '$name' failed, but not with '$expect'"
	else
		ok "broken manifest refused: $name: $(grep -F -- "$expect" <<<"$section" | head -n 1 | sed 's/^ *//')"
	fi
done

finish
