#!/bin/sh
# Listen URLs that nng reaches from other machines but `parley check` accepts without
# control.token / publish.allow_remote.  Only `parley check` runs (nothing listens), except
# the last probe, which listens on loopback to show nng takes an upper-case scheme.
# Usage: tests/attack/attack_exposure.sh [build/parley]
P=${1:-build/parley}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
fail=0
for u in "TCP://0.0.0.0:47111" "ws4://0.0.0.0:47111/c" "ws6://[::]:47111/c" "wss4://0.0.0.0:47111/c" \
         "tls+tcp4://0.0.0.0:47111" "tls+tcp6://[::]:47111" "abstract://parley-control"; do
	for sock in control publish; do
		cat > "$D/c.yaml" <<EOT
data_dir: var
http: { listen: 127.0.0.1:47999 }
$sock: { listen: "$u" }
channels:
  - name: h
    type: webhook
    config: { secret: abcdefgh }
EOT
		if "$P" check -c "$D/c.yaml" >/dev/null 2>&1; then
			echo "FAIL $sock.listen $u accepted without token/allow_remote"
			fail=1
		else
			echo "PASS $sock.listen $u refused"
		fi
	done
done
# nng accepts the scheme in any case: TCP:// listens like tcp://.
cat > "$D/c.yaml" <<EOT
data_dir: $D/var
http: { listen: 127.0.0.1:47998 }
control: { listen: "TCP://127.0.0.1:47113" }
publish: { listen: "ipc://$D/pub.ipc" }
channels:
  - name: h
    type: webhook
    config: { secret: abcdefgh }
EOT
"$P" run -c "$D/c.yaml" >"$D/log" 2>&1 &
pid=$!
sleep 1.5
echo '{"op":"health"}' > "$D/req"
if timeout 3 nngcat --req --dial tcp://127.0.0.1:47113 --file "$D/req" --ascii | grep -q '"ok":true'; then
	echo "INFO control.listen TCP://127.0.0.1:47113 serves requests (so TCP://0.0.0.0 would too)"
fi
kill "$pid"; wait "$pid"
exit $fail
