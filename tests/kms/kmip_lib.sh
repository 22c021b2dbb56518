# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# kmip_lib.sh - what tests/kms/kmip.sh and kmip_guest.sh share: test
# certificates, pykmip-server in a temp dir, its operation policy, and the
# key owner's PyKMIP client.  Source it with T (temp dir), PY, here and
# pids (array of process groups to stop) set; it defines C (certificates)
# and port (the server's).
# shellcheck disable=SC2154 # here, T, PY: set by the caller
#
#   kmip_pki                 CA, server (IP:127.0.0.1), agent, key owner,
#                            a stranger and a server from another CA, and
#                            a client certificate without clientAuth
#   kmip_server_conf         server.conf on a free port, policy allows
#   kmip_policy GET-RIGHT    policy "cmk": GET (what Encrypt and Decrypt
#                            check) for ALLOW_ALL or DISALLOW_ALL
#   kmip_server_start        start, wait until listening with policies loaded
#   kmip_server_stop
#   admin COMMAND ARGS...    tests/kms/kmip_admin.py as the key owner

mkca() {  # mkca NAME
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.pem" \
		-days 2 -subj "/CN=dm-cmk test $1" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign
}
issue() {  # issue NAME CA CN EKU [SAN]
	openssl req -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$3" &&
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' \
		"$4" "${5:+subjectAltName=$5}" >"$C/$1.ext" &&
	openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial \
		-days 2 -out "$C/$1.pem" -extfile "$C/$1.ext"
}
kmip_pki() {
	C=$T/pki
	mkdir -p "$C"
	mkca ca && mkca otherca &&
	issue server ca 127.0.0.1 serverAuth IP:127.0.0.1 &&
	issue agent ca cmk-agent clientAuth &&
	issue admin ca key-owner clientAuth &&
	issue stranger otherca cmk-agent clientAuth &&
	issue otherserver otherca 127.0.0.1 serverAuth IP:127.0.0.1 &&
	issue noclientauth ca cmk-agent serverAuth &&
	chmod 600 "$C"/*.key
}

kmip_policy() {  # kmip_policy GET-RIGHT
	cat >"$T/policies/cmk.json.tmp" <<EOF
{"cmk": {"preset": {"SYMMETRIC_KEY": {
	"GET": "$1", "GET_ATTRIBUTES": "ALLOW_ALL", "LOCATE": "ALLOW_ALL",
	"GET_ATTRIBUTE_LIST": "ALLOW_ALL", "ACTIVATE": "ALLOW_OWNER",
	"REVOKE": "ALLOW_OWNER", "DESTROY": "ALLOW_OWNER"}}}}
EOF
	mv "$T/policies/cmk.json.tmp" "$T/policies/cmk.json"
}
kmip_server_conf() {
	port=$(free_port)
	mkdir -p "$T/policies"
	kmip_policy ALLOW_ALL
	cat >"$T/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$port
certificate_path=$C/server.pem
key_path=$C/server.key
ca_path=$C/ca.pem
auth_suite=TLS1.2
policy_path=$T/policies
enable_tls_client_auth=True
logging_level=INFO
database_path=$T/pykmip.db
EOF
}
# Up = listening and the policy directory loaded (a second after listening).
kmip_server_start() {
	local loads t0
	loads=$(grep -c "Loading policy: cmk" "$T/server.log" 2>/dev/null)
	setsid "$PY" /usr/bin/pykmip-server -f "$T/server.conf" -l "$T/server.log" \
		>"$T/server.out" 2>&1 &
	server_pid=$!
	pids+=("$server_pid")
	t0=$(date +%s%N)
	for _ in $(seq 1 600); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
		[ "$(grep -c "Loading policy: cmk" "$T/server.log" 2>/dev/null)" -gt "${loads:-0}" ] && {
			echo "# pykmip-server up in $((($(date +%s%N) - t0) / 1000000)) ms"
			return 0
		}
		kill -0 "$server_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
kmip_server_stop() {
	kill -- "-$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
}
admin() {  # admin COMMAND ARGS... as the key owner
	"$PY" "$here/kmip_admin.py" "$T" "$port" "$C/admin.pem" "$C/admin.key" "$C/ca.pem" "$@"
}
