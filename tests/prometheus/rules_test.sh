#!/usr/bin/env bash
# rules_test.sh: the Prometheus alert rules of deploy/prometheus/ are valid
# (`promtool check rules`) and pass their unit tests (`promtool test rules`: each alert
# fires on its input series and stays silent on the others). Skips (77) without promtool,
# which Debian's prometheus package provides (deploy/install-deps.sh installs it).
set -u

src=${MB_SOURCE_ROOT:?set MB_SOURCE_ROOT to the source directory}
dir=$src/deploy/prometheus

if ! command -v promtool >/dev/null 2>&1; then
	echo "SKIP: promtool not found (apt-get install prometheus; deploy/install-deps.sh does)"
	exit 77
fi
promtool --version 2>&1 | head -n 1
promtool check rules "$dir/mediabatch-rules.yml" || { echo "FAIL: promtool check rules"; exit 1; }
promtool test rules "$dir/mediabatch-rules.test.yml" || { echo "FAIL: promtool test rules"; exit 1; }
echo "deploy/prometheus: rules valid, unit tests pass"
