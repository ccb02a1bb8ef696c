#!/bin/bash
# The SPLASH apps on the host over pthreads (splash-host, built with ASan/UBSan): every line
# of splashos/apps/host-tests.txt ("APP ARGS...", small sizes) must verify at 1, 2, 3 and 4
# threads, and fail its check with -F (fault injection), so we know the check can fail.
# Usage: host-apps.sh SPLASH_HOST_BINARY
set -uo pipefail
bin=${1:?usage: host-apps.sh SPLASH_HOST_BINARY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
list=$here/splashos/apps/host-tests.txt
out=$(mktemp -d /tmp/splash-host.XXXXXX)
trap 'rm -rf -- "$out"' EXIT
fail=0; n=0
while read -r app args; do
	[[ -z "$app" || "$app" == \#* ]] && continue
	for t in 1 2 3 4; do
		n=$((n + 1))
		if ! log=$("$bin" -t "$t" -i "$here/splashos/inputs" -o "$out" "$app" $args 2>&1) ||
		   ! grep -q "app=$app threads=$t result=PASS" <<<"$log"; then
			echo "FAIL: $app $args at $t threads:"; echo "$log" | tail -20; fail=1
		else
			echo "ok: $app $args at $t threads: $(grep -o 'result=PASS.*' <<<"$log")"
		fi
	done
	n=$((n + 1))
	log=$("$bin" -t 2 -i "$here/splashos/inputs" -o "$out" "$app" $args -F 2>&1); rc=$?
	if [ $rc -eq 0 ] || ! grep -q "app=$app threads=2 result=FAIL" <<<"$log"; then
		echo "FAIL: $app $args -F: the check did not catch the injected fault (rc=$rc)"; echo "$log" | tail -5; fail=1
	else
		echo "ok: $app $args -F fails its check as it must"
	fi
done <"$list"
[ $n -gt 0 ] || { echo "FAIL: no app tests in $list"; fail=1; }
echo "splash host apps: $n runs, $([ $fail = 0 ] && echo all passed || echo FAILURES)"
exit $fail
