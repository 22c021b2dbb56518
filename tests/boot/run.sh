#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot integration, end to end: the path a user takes on a cloud VM.
#
# On the host:
#   - make deb builds the packages dm-cmk-dkms and cmk-agent (lintian
#     clean), twice: as VERSION and as VERSION+test1 (the upgrade);
#   - make install DESTDIR=... (the developers' path) lays out binaries,
#     units, helper, docs and the module; PREFIX moves the units' paths;
#   - dkms.conf: Debian's dkms builds the module for every installed kernel
#     (a private dkms tree and signing key; the host's /lib/modules and
#     /var/lib/dkms are never touched, the module is never loaded here);
#   - systemd-analyze security rates cmk-agent.service (the exposure score
#     is printed; it must stay below 5.0, "OK" or better).
# In a real Debian bookworm guest (debootstrap, cached by tests/boot/
# mkimage.sh; systemd, udev, cloud-init, DKMS, the Debian kernel and
# headers packages of KVER) with both builds of the packages in
# /var/cache/cmk-boot-test/debs, booted four times under QEMU TCG with a
# NoCloud seed (cidata ISO), a second virtio disk as the ephemeral disk, a
# fourth as a persistent one, and AWS KMS (moto, IAM auth on) plus an
# IMDSv2 instance role on the host, reached through guestfwd:
#   1 cloud-init runs our user-data, which installs the packages with
#     "apt install" (offline: the image holds their dependencies) and DKMS
#     builds the module in the guest; the agent runs hardened; the disk is
#     dm-cmk with ext4 mounted; its data is ciphertext on the backing disk
#     (checked in the guest and on the host's disk file); PostgreSQL 15
#     (guest/pgsetup.sh) runs with its data on a persistent dm-cmk device,
#     temp_tablespaces on the ephemeral one, WAL sealed by the package's
#     cmk-wal-archive through the agent's key socket;
#   2 a new header and DEK; the old data is gone; PostgreSQL's temp
#     tablespace on the new file system, its table unchanged; a Deny on
#     kms:Decrypt while running wipes the keys, archiving fails, the
#     database stops;
#   3 with the Deny in place at boot: the agent fails, the disks stay
#     closed, the database is never started;
#   4 the Deny lifted: the database's data intact; the packages' life
#     cycle with a persistent device open - upgrade to VERSION+test1, apt remove, install again (the
#     persistent data is read back), apt purge.
# tests/boot/guest/check.sh has the guest side.
#
# Usage: tests/boot/run.sh [--kver KVER]      Output: TAP on stdout.
# KEEP=1 keeps the work directory.  Needs root (debootstrap, dkms).
set -uo pipefail

# The KMS suites' library: temp dir and servers stopped on exit (kms_init,
# kms_start), --kver (guest_args), moto with IAM (moto_start, moto_users),
# ok, aws_as, jq_, wait_file.  Its check is replaced below by one that
# prints the failed command's output.
# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/../kms/lib.sh"
kms_init boot
cd "$top" || exit 1
guest_args boot "$@"

not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n $1"
	shift
	[ $# -eq 0 ] || printf '%s\n' "$@" | sed 's/^/# /'
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
bail() {
	not_ok "$@"
	echo "1..$n"
	exit 1
}
# check NAME CMD...: ok when CMD succeeds; else its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "failed: $(echo "$*" | tr -s ' \t\n' ' ' | cut -c1-300)" "$(printf '%s\n' "$out" | tail -n 15)"
	fi
}
t_all=$(date +%s)

[ "$(id -u)" -eq 0 ] || bail boot_runs_as_root "debootstrap and dkms need root"
for c in debootstrap dkms genisoimage qemu-system-x86_64 nc moto_server aws systemd-analyze mkfs.ext4; do
	command -v "$c" >/dev/null || bail boot_host_tools "$c is missing: run make deps"
done

# ---- build, and make install into a staging directory -----------------------------
make -s -C agent all >"$T/build.log" 2>&1 || bail boot_agent_builds "$(tail -n 20 "$T/build.log")"
scripts/kbuild.sh "$kver" >"$T/build.log" 2>&1 || bail boot_module_builds "$(tail -n 20 "$T/build.log")"

stage=$T/stage
check boot_make_install_lays_out_everything bash -c "
	make -s install DESTDIR=$stage KVER=$kver >$T/install.log 2>&1 || { cat $T/install.log; exit 1; }
	for f in usr/sbin/cmk-agent usr/sbin/cmkctl usr/libexec/dm-cmk/cmk-ephemeral \
		usr/libexec/dm-cmk/pg/cmk-wal-archive usr/libexec/dm-cmk/pg/cmk-pg-temp-tablespace; do
		[ -x $stage/\$f ] || { echo \"missing \$f\"; exit 1; }
	done
	for f in usr/lib/systemd/system/cmk-agent.service usr/lib/systemd/system/cmk-ephemeral@.service \
		lib/modules/$kver/updates/dm-cmk.ko usr/share/doc/dm-cmk/deployment.rst \
		usr/share/doc/dm-cmk/examples/cloud-config.yaml usr/share/doc/dm-cmk/examples/agent.conf; do
		[ -f $stage/\$f ] || { echo \"missing \$f\"; exit 1; }
	done
	[ \"\$(modinfo -F vermagic $stage/lib/modules/$kver/updates/dm-cmk.ko | cut -d' ' -f1)\" = '$kver' ]"
check boot_make_install_prefix_moves_unit_paths bash -c "
	make -s install DESTDIR=$T/stage-local PREFIX=/usr/local INSTALL_MODULE=none >$T/install2.log 2>&1 ||
		{ cat $T/install2.log; exit 1; }
	u=$T/stage-local/usr/local/lib/systemd/system
	grep -q '^ExecStart=/usr/local/sbin/cmk-agent ' \$u/cmk-agent.service &&
	grep -q '^ExecStart=/usr/local/libexec/dm-cmk/cmk-ephemeral start %i' \$u/cmk-ephemeral@.service &&
	[ -x $T/stage-local/usr/local/sbin/cmkctl ] && [ ! -e $T/stage-local/lib/modules ]"

# ---- DKMS, for every Debian kernel with headers, in a private tree ------------------
make -s install DESTDIR="$T/dkms-src" INSTALL_MODULE=dkms >"$T/dkms-install.log" 2>&1 ||
	not_ok boot_make_install_dkms_source "$(tail -n 10 "$T/dkms-install.log")"
ver=$(make -s version)
src=$T/dkms-src/usr/src
mkdir -p "$T/dkms-tree"
# dkms signs modules; keep its key out of /var/lib/dkms.
export mok_signing_key=$T/dkms-mok.key mok_certificate=$T/dkms-mok.pub
if dkms add -m dm-cmk -v "$ver" --sourcetree "$src" --dkmstree "$T/dkms-tree" >"$T/dkms.log" 2>&1; then
	for k in $(scripts/kvers.sh); do
		t0=$(date +%s)
		if dkms build -m dm-cmk -v "$ver" --sourcetree "$src" --dkmstree "$T/dkms-tree" \
			-k "$k" >"$T/dkms-$k.log" 2>&1; then
			ko=$(find "$T/dkms-tree/dm-cmk/$ver/$k" -name 'dm-cmk.ko*' | head -n 1)
			vm=$(modinfo -F vermagic "$ko" 2>/dev/null | cut -d' ' -f1)
			if [ "$vm" = "$k" ]; then
				ok "boot_dkms_builds_module_for_$k"
				diag "dkms build $k: $(($(date +%s) - t0)) s, $(basename "$ko")"
			else
				not_ok "boot_dkms_builds_module_for_$k" "built ${ko:-nothing}, vermagic '$vm'"
			fi
		else
			not_ok "boot_dkms_builds_module_for_$k" "$(tail -n 15 "$T/dkms-$k.log")"
		fi
	done
else
	not_ok boot_dkms_add "$(tail -n 10 "$T/dkms.log")"
fi
unset mok_signing_key mok_certificate

# ---- systemd-analyze security ---------------------------------------------------------
systemd-analyze security --offline=true --no-pager \
	"$stage/usr/lib/systemd/system/cmk-agent.service" >"$T/security.log" 2>&1
score=$(sed -n 's/.*Overall exposure level for cmk-agent.service: \([0-9.]*\) .*/\1/p' "$T/security.log")
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 5.0) }'; then
	ok boot_agent_unit_exposure_below_5
else
	not_ok boot_agent_unit_exposure_below_5 "$(tail -n 5 "$T/security.log")"
fi
diag "systemd-analyze security cmk-agent.service: $(grep -o 'Overall exposure level.*' "$T/security.log")"

# ---- the packages: this version and a newer build of the same tree --------------------
# deb_make_deb_builds_lintian_clean: scripts/deb.sh fails on a build error
# or on any lintian tag that is not overridden with a reason.
# deb_make_deb_keeps_other_debs: another package's .deb in the output
# directory (an operator's local repository) survives the build.
mkdir -p "$T/deb-v1"
echo not-ours >"$T/deb-v1/other-package_1.0_all.deb"
for b in v1 v2; do
	t0=$(date +%s)
	suffix=
	[ $b = v1 ] || suffix=+test1
	if make -s deb DEBDIR="$T/deb-$b" DEB_VERSION_SUFFIX="$suffix" \
		>"$T/deb-$b.log" 2>&1 </dev/null; then
		ok "deb_make_deb_builds_lintian_clean_$b"
	else
		bail "deb_make_deb_builds_lintian_clean_$b" "$(tail -n 30 "$T/deb-$b.log")"
	fi
	diag "make deb ($b): $(($(date +%s) - t0)) s; lintian:" "$(sed -n '/^deb: lintian/,$p' "$T/deb-$b.log")"
done
check deb_make_deb_keeps_other_debs grep -qx not-ours "$T/deb-v1/other-package_1.0_all.deb"
check deb_versions_from_changelog bash -c "
	ls $T/deb-v1/dm-cmk-dkms_${ver}_all.deb $T/deb-v1/cmk-agent_${ver}_*.deb \
		$T/deb-v2/dm-cmk-dkms_${ver}+test1_all.deb $T/deb-v2/cmk-agent_${ver}+test1_*.deb &&
	dpkg-deb -c $T/deb-v2/dm-cmk-dkms_${ver}+test1_all.deb | grep -q ' ./usr/src/dm-cmk-${ver}+test1/dkms.conf\$' &&
	dpkg-deb --fsys-tarfile $T/deb-v2/dm-cmk-dkms_${ver}+test1_all.deb |
		tar -xO ./usr/src/dm-cmk-${ver}+test1/dkms.conf | grep -qx 'PACKAGE_VERSION=\"${ver}+test1\"'"

# ---- the guest image ----------------------------------------------------------------------
t0=$(date +%s)
cached=$(tests/boot/mkimage.sh --kver "$kver" 2>"$T/mkimage.log") ||
	bail boot_debian_image_builds "$(tail -n 20 "$T/mkimage.log")"
ok boot_debian_image_builds
diag "image: $(($(date +%s) - t0)) s ($(grep -q 'built in' "$T/mkimage.log" && echo cold, debootstrap || echo warm, cached): $cached)"

t0=$(date +%s)
root=$T/root
cp -a --reflink=auto "$cached" "$root" || bail boot_image_copied "cp -a $cached failed"
# Our packages, where the user-data's "apt install" finds them (an image
# builder would put them in a local repository the same way).
for b in v1 v2; do
	install -D -m 0644 -t "$root/var/cache/cmk-boot-test/debs/$b" \
		"$T/deb-$b"/dm-cmk-dkms_*.deb "$T/deb-$b"/cmk-agent_*.deb
done
# The test's own pieces: the checks, the database's set-up (the
# user-data runs it, as an operator would).
install -D -m 0755 "$here/guest/check.sh" "$root/usr/lib/cmk-boot-test/check.sh"
install -D -m 0755 "$here/guest/apt.sh" "$root/usr/lib/cmk-boot-test/apt.sh"
install -D -m 0755 "$here/guest/pgsetup.sh" "$root/usr/lib/cmk-boot-test/pgsetup.sh"
install -m 0644 "$here/guest/cmk-boot-test.service" "$root/etc/systemd/system/"
ln -sf /etc/systemd/system/cmk-boot-test.service \
	"$root/etc/systemd/system/multi-user.target.wants/cmk-boot-test.service"
# Image settings a cloud image has, and timers a three-minute VM does not need.
printf 'locale: C.UTF-8\n' >"$root/etc/cloud/cloud.cfg.d/91-cmk-test-locale.cfg"
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer getty@tty1.service; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
cp "$root/boot/vmlinuz-$kver" "$T/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$T/initrd"
size=$(( $(du -sm "$root" | cut -f1) * 13 / 10 + 256 ))
mkfs.ext4 -q -F -L root -d "$root" "$T/root.img" "${size}M" >"$T/mkfs.log" 2>&1 ||
	bail boot_root_image_made "$(tail -n 10 "$T/mkfs.log")"
rm -rf "$root"
diag "root disk: ${size} MiB, made in $(($(date +%s) - t0)) s"

# ---- KMS: moto with IAM auth, an instance role served by an IMDSv2 fake -----------------
for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
mkdir -p "$HOME" "$T/ctl"
moto_start "$MOTO_SETUP_CALLS"
role_pol='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}'
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/admin","arn:aws:iam::123456789012:root"]},"Action":"sts:AssumeRole"}]}'
deny='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}'
# admin (the agent user moto_users also makes is not used here)
moto_users "$role_pol" || bail boot_moto_setup "$(tail -c 400 "$T/last")"
A=("$admin_ak" "$admin_sk")
{
	aws_as "${A[@]}" iam create-role --role-name agent-role --assume-role-policy-document "$trust" &&
	aws_as "${A[@]}" iam put-role-policy --role-name agent-role --policy-name kms --policy-document "$role_pol" &&
	aws_as "${A[@]}" sts assume-role --role-arn arn:aws:iam::123456789012:role/agent-role \
		--role-session-name i-0cmkboot --duration-seconds 3600 >"$T/sts.json" &&
	aws_as "${A[@]}" kms create-key >"$T/key.json"
} >>"$T/setup.log" 2>&1 || bail boot_moto_setup "$(tail -c 400 "$T/setup.log")"
key=$(jq_ "d['KeyMetadata']['Arn']" <"$T/key.json")
python3 - "$T/imds-creds.json" "$T/sts.json" <<'PY'
import datetime, json, sys
c = json.load(open(sys.argv[2]))['Credentials']
exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3500)
json.dump({"Code": "Success", "LastUpdated": "2025-01-01T00:00:00Z", "Type": "AWS-HMAC",
           "AccessKeyId": c['AccessKeyId'], "SecretAccessKey": c['SecretAccessKey'],
           "Token": c['SessionToken'], "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")},
          open(sys.argv[1], "w"))
PY
role_env() {  # the instance role's credentials, for cmkctl on the host
	python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_SESSION_TOKEN=%s" % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"]))' "$T/imds-creds.json"
}
# shellcheck disable=SC2046 # role_env prints VAR=value words
env $(role_env) AWS_REGION=us-east-1 AWS_ENDPOINT_URL_KMS="$MOTO" agent/build/cmkctl kek create \
	--provider aws --key-id "$key" --context service=boot-test --out "$T/kek.json" >"$T/kek.log" 2>&1 ||
	bail boot_kek_create "$(cat "$T/kek.log")"
# The oracle for "revoked": the same Deny makes cmkctl on the host exit 2.
# shellcheck disable=SC2046
check boot_moto_role_deny_is_definitive bash -c "
	AWS_ACCESS_KEY_ID=${A[0]} AWS_SECRET_ACCESS_KEY=${A[1]} AWS_DEFAULT_REGION=us-east-1 \
		aws --endpoint-url $MOTO iam put-role-policy --role-name agent-role --policy-name deny \
		--policy-document '$deny' || exit 1
	env $(role_env) AWS_REGION=us-east-1 AWS_ENDPOINT_URL_KMS=$MOTO agent/build/cmkctl kek check $T/kek.json
	rc=\$?
	AWS_ACCESS_KEY_ID=${A[0]} AWS_SECRET_ACCESS_KEY=${A[1]} AWS_DEFAULT_REGION=us-east-1 \
		aws --endpoint-url $MOTO iam delete-role-policy --role-name agent-role --policy-name deny || exit 1
	[ \$rc = 2 ] || { echo \"cmkctl kek check under the deny: exit \$rc\"; exit 1; }
	env $(role_env) AWS_REGION=us-east-1 AWS_ENDPOINT_URL_KMS=$MOTO agent/build/cmkctl kek check $T/kek.json"

printf 'AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url %q iam put-role-policy --role-name agent-role --policy-name deny --policy-document %q\n' \
	"${A[0]}" "${A[1]}" "$MOTO" "$deny" >"$T/ctl/deny"
: >"$T/imds.log"
kms_start imds python3 tests/kms/fakes.py imds "$T/imds.port" "$T/imds.log" "$T/imds-creds.json"
kms_start control python3 tests/kms/fakes.py control "$T/ctl.port" "$T/ctl.log" "$T/ctl"
wait_file "$T/imds.port" || bail boot_imds_fake_starts "$(cat "$T/imds.out")"
wait_file "$T/ctl.port" || bail boot_control_server_starts "$(cat "$T/control.out")"

# ---- the NoCloud seed: our user-data, as docs/examples/cloud-config.yaml --------------
mkdir -p "$T/seed"
{
	printf 'instance-id: i-0cmkboot\nlocal-hostname: cmk-guest\n'
} >"$T/seed/meta-data"
cat >"$T/seed/network-config" <<'EOF'
version: 1
config:
  - type: physical
    name: eth0
    subnets:
      - type: static
        address: 10.0.2.15/24
        gateway: 10.0.2.2
EOF
indent() { sed 's/^/      /'; }
{
	cat <<'EOF'
#cloud-config
# tests/boot: scripts/cloud-init/cloud-config.yaml with the test's KMS
# (moto through guestfwd, the instance role from an IMDSv2 fake), the
# ephemeral disk /dev/vdb, a persistent one /dev/vdd and PostgreSQL 15
# (tests/boot/guest/pgsetup.sh).
write_files:
  - path: /etc/cmk/agent.conf
    owner: root:root
    permissions: "0600"
    content: |
      [agent]
      kek_envelope = /etc/cmk/kek.json
      check_interval_ms = 1000
      jitter_pct = 0
      lease_ms = 15000
      grace_s = 60
      policy = wipe
      audit_log = /var/log/cmk/audit.log
      boot_deadline_s = 60
      key_socket = /run/cmk/keys.sock
      key_socket_allow = user:postgres
      key_socket_group = postgres

      [provider "aws"]
      region = us-east-1
      endpoint = http://127.0.0.1:8080
      credentials = imds
      imds_endpoint = http://127.0.0.1:8082
      timeout_ms = 10000

      [device "scratch"]
      backing = /dev/vdb
      mode = ephemeral
      sector_size = 4096
  - path: /etc/cmk/kek.json
    owner: root:root
    permissions: "0600"
    content: |
EOF
	indent <"$T/kek.json"
	cat <<'EOF'
  # moto and the IMDS fake speak plain HTTP, which the agent sends only to
  # loopback (KMS) or link-local (metadata) addresses: relay 127.0.0.1:P
  # to the host's peers at 10.0.2.100:P (guestfwd).
  - path: /etc/systemd/system/cmk-test-relay@.socket
    owner: root:root
    permissions: "0644"
    content: |
      [Unit]
      Description=test relay 127.0.0.1:%i to the host's peer
      Before=cmk-agent.service
      [Socket]
      ListenStream=127.0.0.1:%i
      [Install]
      WantedBy=sockets.target
  - path: /etc/systemd/system/cmk-test-relay@.service
    owner: root:root
    permissions: "0644"
    content: |
      [Unit]
      Description=test relay 127.0.0.1:%i to 10.0.2.100:%i
      [Service]
      ExecStart=/lib/systemd/systemd-socket-proxyd 10.0.2.100:%i
  - path: /etc/cmk/ephemeral/scratch.conf
    owner: root:root
    permissions: "0644"
    content: |
      MOUNTPOINT=/var/lib/cmktest
      FSTYPE=ext4
      MKFS_OPTIONS=-E lazy_itable_init=1,nodiscard
      MOUNT_OPTIONS=nodev,nosuid,noatime
      DIR_MODE=0711
  - path: /etc/cmk/ephemeral/pgdata.conf
    owner: root:root
    permissions: "0644"
    content: |
      MOUNTPOINT=/var/lib/pgdata
      OWNER=postgres:postgres
      DIR_MODE=0700
  # PostgreSQL only on the dm-cmk devices: data on pgdata, temp
  # tablespace on scratch, whose directory every boot's new file system
  # lacks (cmk-pg-temp-tablespace, storage.rst).
  - path: /etc/systemd/system/postgresql@15-main.service.d/cmk.conf
    owner: root:root
    permissions: "0644"
    content: |
      [Unit]
      BindsTo=cmk-ephemeral@pgdata.service cmk-ephemeral@scratch.service
      After=cmk-ephemeral@pgdata.service cmk-ephemeral@scratch.service
      AssertPathIsMountPoint=/var/lib/pgdata
      AssertPathIsMountPoint=/var/lib/cmktest
      [Service]
      ExecStartPre=+/usr/libexec/dm-cmk/pg/cmk-pg-temp-tablespace /var/lib/pgdata/15-main /var/lib/cmktest/pgtemp
# The packages from the image's local directory, offline; their postinst
# enables and starts cmk-agent (the configuration is written above).
runcmd:
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, cmk-test-relay@8080.socket, cmk-test-relay@8082.socket]
  - /usr/lib/cmk-boot-test/apt.sh install-v1 install /var/cache/cmk-boot-test/debs/v1/*.deb
  - [systemctl, enable, cmk-ephemeral@scratch.service, cmk-ephemeral@pgdata.service]
  - /usr/lib/cmk-boot-test/pgsetup.sh
EOF
} >"$T/seed/user-data"
genisoimage -quiet -output "$T/seed.iso" -volid cidata -joliet -rock \
	"$T/seed/user-data" "$T/seed/meta-data" "$T/seed/network-config" 2>"$T/iso.log" ||
	bail boot_seed_iso "$(cat "$T/iso.log")"
# The ephemeral disk: all zero, as a new cloud instance-store disk is.
truncate -s 160M "$T/eph.img"
# The persistent disk: PostgreSQL's data (cmkctl format in the guest).
truncate -s 256M "$T/pers.img"
marker=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

# ---- three boots of the same image ---------------------------------------------------
boot() {
	local phase=$1 tmo=$2 t0 rc line
	t0=$(date +%s)
	: >"$T/results-$phase.log"
	timeout "$tmo" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1536 \
		-display none -no-reboot -monitor none \
		-kernel "$T/vmlinuz" -initrd "$T/initrd" \
		-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 modprobe.blacklist=floppy no_timer_check panic=-1 oops=panic cmk_test.phase=$phase cmk_test.marker=$marker" \
		-drive "file=$T/root.img,if=virtio,format=raw" \
		-drive "file=$T/eph.img,if=virtio,format=raw" \
		-drive "file=$T/seed.iso,if=virtio,format=raw,readonly=on" \
		-drive "file=$T/pers.img,if=virtio,format=raw" \
		-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:nc 127.0.0.1 $moto_port,guestfwd=tcp:10.0.2.100:8081-cmd:nc 127.0.0.1 $(cat "$T/ctl.port"),guestfwd=tcp:10.0.2.100:8082-cmd:nc 127.0.0.1 $(cat "$T/imds.port")" \
		-device virtio-net-pci,netdev=n0 \
		-serial "file:$T/console-$phase.log" -serial "file:$T/results-$phase.log" \
		>"$T/qemu-$phase.log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"not ok "*) not_ok "${line#not ok }" ;;
		"#"*) echo "$line" ;;
		esac
	done < <(tr -d '\r' <"$T/results-$phase.log")
	diag "boot $phase: $(($(date +%s) - t0)) s wall, qemu exit $rc"
	if ! grep -q '^phase-done' <(tr -d '\r' <"$T/results-$phase.log"); then
		not_ok "boot${phase}_guest_finished" \
			"$([ "$rc" = 124 ] && echo "timeout after $tmo s" || echo "qemu exit $rc")" \
			"$(grep -m 5 -E 'BUG|WARNING|Oops|Kernel panic|Call Trace' "$T/console-$phase.log")" \
			"console tail:" "$(tr -d '\r' <"$T/console-$phase.log" | tail -n 30)" \
			"$(tail -n 5 "$T/qemu-$phase.log")"
	fi
	if grep -qE 'Kernel panic|BUG:|WARNING:.*dm[-_]cmk|Oops' "$T/console-$phase.log"; then
		not_ok "boot${phase}_kernel_log_clean" \
			"$(grep -m 10 -A 10 -E 'Kernel panic|BUG:|WARNING:|Oops' "$T/console-$phase.log")"
	fi
}
# no_plaintext_on_disk_file NAME: the marker is not in the backing file.
no_plaintext_on_disk_file() {
	local c
	c=$(grep -a -c "CMKMARK-$marker" "$T/eph.img")
	if [ "$c" -eq 0 ]; then
		ok "$1"
	else
		not_ok "$1" "$c lines of plaintext in the ephemeral disk file"
	fi
}

# Boots 1 and 4 build the module with DKMS under TCG (printed by the guest).
boot 1 "${BOOT_TIMEOUT:-1800}"
no_plaintext_on_disk_file boot1_host_sees_only_ciphertext_in_disk_file
boot 2 "${BOOT_TIMEOUT:-900}"
no_plaintext_on_disk_file boot2_host_sees_only_ciphertext_in_disk_file
# The guest asked for the Deny during boot 2; make sure it is in place.
bash "$T/ctl/deny" >"$T/deny.log" 2>&1 || not_ok boot3_deny_in_place "$(cat "$T/deny.log")"
boot 3 "${BOOT_TIMEOUT:-900}"
AWS_ACCESS_KEY_ID=${A[0]} AWS_SECRET_ACCESS_KEY=${A[1]} AWS_DEFAULT_REGION=us-east-1 \
	aws --endpoint-url "$MOTO" iam delete-role-policy --role-name agent-role --policy-name deny \
	>"$T/undeny.log" 2>&1 || not_ok deb4_deny_lifted "$(cat "$T/undeny.log")"
boot 4 "${BOOT_TIMEOUT:-1800}"
diag "host control log: $(tr '\n' ';' <"$T/ctl.log")"
diag "IMDS requests: $(grep -c . "$T/imds.log"), KMS: moto on $moto_port"
diag "boot test: $(($(date +%s) - t_all)) s wall"
echo "1..$n"
exit "$failed"
