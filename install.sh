#!/bin/bash
# callrec installer: the appliance (Raspberry Pi OS + telephony HAT) or a development setup with
# the line simulator. Idempotent: each step checks what is already right, changes only what is
# not, verifies its result, and logs to a file. Run with --help for the modes.
set -Eeuo pipefail

PROG=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

# --- Production layout --------------------------------------------------------------------------
PROD_VENV=/opt/callrec
PROD_CONFIG_DIR=/etc/callrec
PROD_CONFIG=$PROD_CONFIG_DIR/callrec.toml
PROD_DATA=/var/lib/callrec
PROD_UNIT=/etc/systemd/system/callrec.service
PROD_ALSA=/etc/alsa/conf.d/50-callrec.conf
PROD_UDEV=/etc/udev/rules.d/99-callrec.rules
PROD_USB_UDEV=/etc/udev/rules.d/99-callrec-usb.rules
PROD_USB_MOUNT=/etc/systemd/system/media-callrec.mount
PROD_AVAHI=/etc/avahi/services/callrec.service
PROD_TLS_DIR=$PROD_CONFIG_DIR/tls # web.tls_cert_file and web.tls_key_file's default folder
# http://callrec.local: avahi publishes <hostname>.local. Raspberry Pi OS's default hostname is
# renamed to this one; any other (set with Imager or raspi-config) is somebody's choice, kept.
ETC_HOSTNAME=/etc/hostname
ETC_HOSTS=/etc/hosts
PI_DEFAULT_HOSTNAME=raspberrypi
APPLIANCE_HOSTNAME=callrec
# The install log: 0640 root:adm in a folder of its own, like other system logs (adm may read
# logs). Up to 2024 it was /var/log/callrec-install.log, moved here on the next install.
PROD_LOG_DIR=/var/log/callrec
PROD_LOG=$PROD_LOG_DIR/install.log
OLD_PROD_LOG=/var/log/callrec-install.log
PROD_USER=callrec

# No libasound2-plugins on the appliance: the HAT's PCMs (hw/alsa) use only alsa-lib's own
# hw/plug/asym, and the plugins would map ~14 MB of libraries into the daemon.
# libsndfile1: the transcoder (Opus, FLAC) through soundfile, whose wheels bundle it only on
# x86_64 and aarch64; a 32-bit Raspberry Pi OS (Pi Zero 2, Pi 3) uses Debian's.
# avahi-daemon: mDNS, so the technician's laptop finds the web UI as callrec.local (Raspberry Pi
# OS ships it; Lite images built without it get it here).
# openssl: makes the web UI's HTTPS certificate at install (`callrec tls generate`).
PROD_PACKAGES=(python3-venv python3-dev build-essential portaudio19-dev
  alsa-utils espeak-ng sox libsndfile1 avahi-daemon openssl)
DEV_PACKAGES=(python3-venv python3-dev build-essential portaudio19-dev pulseaudio pulseaudio-utils
  libasound2-plugins alsa-utils espeak-ng sox libsndfile1)
# For tests/install: shellcheck, and systemd for systemd-analyze; fonts for browser screenshots;
# openssl for the certificate step's tests.
# SIP peers for the SIP tests (issue 6): sip-tester is SIPp; baresip-core is baresip's CLI user
# agent with its modules, without the "baresip" metapackage's recommended GTK/X11/GStreamer.
# debootstrap: tests/install/test_install_rootfs.py builds a Debian bookworm root file system
# and runs the appliance install and an upgrade in it (in a chroot).
TEST_PACKAGES=(chromium chromium-driver fonts-dejavu-core shellcheck systemd sip-tester baresip-core
  openssl debootstrap)

usage() {
  cat <<EOF
Usage: $PROG [MODE] [OPTIONS]

Modes:
  (none)             Install the appliance (Raspberry Pi OS bookworm, as root): apt packages,
                     user '$PROD_USER', venv $PROD_VENV from this checkout (with [hat]),
                     config $PROD_CONFIG (only if absent), data $PROD_DATA, prompts,
                     ALSA PCM 'callrec-line', udev rule, systemd unit (enabled and started
                     when systemd runs). Re-running upgrades in place: keeps the config, TLS
                     certificate, recordings, keys and accounts, migrates the config to the
                     current config_version (old file kept as callrec.toml.v<N>.bak), stops the
                     daemon only if the code changes, and changes nothing that is already right.
  --uninstall        Remove the unit, venv, ALSA config and udev rule. Keeps $PROD_CONFIG_DIR,
                     the '$PROD_USER' account and the recordings in $PROD_DATA.
    --purge-recordings  Also delete $PROD_DATA (all recordings). Asks first, unless --yes.
    --yes, -y          Do not ask.
  --dev              Development setup on any Debian/Ubuntu (no Pi, root or sudo): simulator
                     packages, ./.venv with 'pip install -e .', ./var/callrec.toml from
                     hw/config/callrec-sim.toml (paths under ./var, web on 127.0.0.1:8080;
                     never overwritten), prompts in ./var/data/prompts.
    --with-tests       Also chromium, chromium-driver, shellcheck, SIPp, baresip and pip '.[test]'.
    --run              Then start the simulated appliance (PulseAudio, 'callrec sim line',
                       'callrec run', logs in ./var/log/), print the URL and the setup code,
                       and run the demo caller until Ctrl-C, which stops all of it.
    --config-only      Only write ./var (config, folders): no packages, no venv, no prompts.
  --reinstall        Reinstall the Python package even if the checkout did not change.
  -h, --help         This help.

Environment (for tests and image builds):
  CALLREC_SKIP_APT=1   Do not install system packages (missing ones are reported).
  CALLREC_SKIP_PIP=1   Do not create or change the venv; it must already provide 'callrec'.
  CALLREC_VENV=DIR     Venv for --dev (default: ./.venv).
  CALLREC_PYTHON=PATH  Python that creates venvs (default: /usr/bin/python3).

Logs: $PROD_LOG (appliance), ./var/log/install.log (--dev).
EOF
}

# --- Output and logging: every step prints what it does and its verification, and logs. ---------
LOG=
STEP=
say() {
  printf '%s\n' "$*"
  if [ -n "$LOG" ]; then printf '%s %s\n' "$(date '+%F %T')" "$*" >>"$LOG"; fi
}
step() { STEP=$*; say "==> $*"; }
ok() { say "    ok: $*"; }
note() { say "    $*"; }
warn() { say "    WARNING: $*" >&2; }
die() {
  say "ERROR${STEP:+ in step \"$STEP\"}: $*" >&2
  if [ -n "$LOG" ]; then say "(full log: $LOG)" >&2; fi
  exit 1
}
log_init() {
  LOG=$1
  mkdir -p "$(dirname "$LOG")"
  touch "$LOG"
  chmod 0600 "$LOG"
  printf '\n=== %s %s %s (from %s) ===\n' "$(date -Is)" "$PROG" "$ARGS" "$REPO" >>"$LOG"
}
# The appliance's log: appended to by every install, upgrade and uninstall, 0640 root:adm like
# the system's other logs (it names paths, versions and counts, never a secret or a recording).
prod_log_init() {
  local group=adm
  getent group adm >/dev/null || group=root
  if [ ! -d "$PROD_LOG_DIR" ]; then install -d -m 0750 -o root -g "$group" "$PROD_LOG_DIR"; fi
  if [ -f "$OLD_PROD_LOG" ] && [ ! -e "$PROD_LOG" ]; then mv "$OLD_PROD_LOG" "$PROD_LOG"; fi
  log_init "$PROD_LOG"
  chown "root:$group" "$PROD_LOG"
  chmod 0640 "$PROD_LOG"
  [ "$(stat -c '%U:%G %a' "$PROD_LOG")" = "root:$group 640" ] || die "$PROD_LOG is not root:$group 0640"
}
# run CMD...: runs a command with its output in the log only; on failure shows the log's tail.
run() {
  local rc=0
  printf '%s $ %s\n' "$(date '+%F %T')" "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 </dev/null || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$LOG" | sed 's/^/    | /' >&2
    die "command failed (exit $rc): $*"
  fi
}
# try CMD...: like run, but returns the exit status instead of stopping.
try() {
  printf '%s $ %s\n' "$(date '+%F %T')" "$*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 </dev/null
}
on_error() {
  local rc=$? line=$1
  trap - ERR
  say "ERROR: unexpected failure (exit $rc) at install.sh line $line${STEP:+, step \"$STEP\"}" >&2
  if [ -n "$LOG" ]; then say "(full log: $LOG)" >&2; fi
}
trap 'on_error $LINENO' ERR

# --- Options ------------------------------------------------------------------------------------
ARGS="$*"
MODE=prod
UNINSTALL=0 PURGE=0 YES=0 WITH_TESTS=0 RUN=0 CONFIG_ONLY=0 REINSTALL=0
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --dev) MODE=dev ;;
    --with-tests) WITH_TESTS=1 ;;
    --run) RUN=1 ;;
    --config-only) CONFIG_ONLY=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge-recordings) PURGE=1 ;;
    -y | --yes) YES=1 ;;
    --reinstall) REINSTALL=1 ;;
    *) printf '%s: unknown option %s (see --help)\n' "$PROG" "$1" >&2; exit 2 ;;
  esac
  shift
done
usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }
if [ "$MODE" != dev ]; then
  if [ "$WITH_TESTS" = 1 ]; then usage_error "--with-tests needs --dev"; fi
  if [ "$RUN" = 1 ]; then usage_error "--run needs --dev"; fi
  if [ "$CONFIG_ONLY" = 1 ]; then usage_error "--config-only needs --dev"; fi
fi
if [ "$UNINSTALL" = 1 ] && [ "$MODE" = dev ]; then
  usage_error "--uninstall is for the appliance; a dev setup is removed with: rm -rf .venv var"
fi
if [ "$UNINSTALL" = 1 ] && [ "$REINSTALL" = 1 ]; then usage_error "--reinstall contradicts --uninstall"; fi
if [ "$UNINSTALL" = 0 ] && { [ "$PURGE" = 1 ] || [ "$YES" = 1 ]; }; then
  usage_error "--purge-recordings and --yes go with --uninstall"
fi
if [ "$CONFIG_ONLY" = 1 ] && { [ "$RUN" = 1 ] || [ "$WITH_TESTS" = 1 ]; }; then
  usage_error "--config-only installs nothing else: no --run or --with-tests with it"
fi

# --- Shared helpers -----------------------------------------------------------------------------
is_true() { case ${1:-} in 1 | true | yes) return 0 ;; *) return 1 ;; esac; }
systemd_running() { [ -d /run/systemd/system ]; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
in_group() { [[ " $(id -nG "$1") " == *" $2 "* ]]; }

SUDO=()
need_privileges() {
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); return; fi
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install as root, or install sudo"
  SUDO=(sudo)
}

# apt_ensure PKG...: installs what is missing (apt-get update only then); verifies all installed.
apt_ensure() {
  local p missing=()
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then ok "all $# packages already installed (apt-get not run)"; return; fi
  if is_true "${CALLREC_SKIP_APT:-}"; then
    warn "CALLREC_SKIP_APT=1: NOT installing missing packages: ${missing[*]}"
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: a Debian or Ubuntu system is needed (missing: ${missing[*]})"
  need_privileges
  note "missing: ${missing[*]}"
  run "${SUDO[@]}" apt-get update
  run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "package $p is still not installed"
  done
  ok "installed ${missing[*]}"
}

python_for_venvs() {
  local py=${CALLREC_PYTHON:-/usr/bin/python3}
  if [ ! -x "$py" ]; then py=$(command -v python3 || true); fi
  if [ -z "$py" ] || [ ! -x "$py" ]; then die "no python3 found to create the venv"; fi
  printf '%s\n' "$py"
}
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

# venv_ensure DIR: a working venv of the system Python's version (recreated if broken/outdated).
venv_ensure() {
  local venv=$1 py want have
  py=$(python_for_venvs)
  want=$(py_version "$py") || die "$py does not run"
  if have=$(py_version "$venv/bin/python") && [ "$have" = "$want" ] \
    && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    ok "venv $venv exists (Python $have)"
    return
  fi
  if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
    die "$venv exists and is not a venv: move it away first"
  fi
  note "creating venv $venv with $py (Python $want)${have:+, replacing a broken or Python $have one}"
  run "$py" -m venv --clear "$venv"
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || die "venv $venv has no working pip"
  VENV_CHANGED=1
  ok "venv $venv created (Python $want)"
}

# The stamp records what the venv was installed from, so an unchanged checkout is not reinstalled.
stamp_matches() {
  local stamp=$1 want_source=$2 extra
  shift 2
  [ -f "$stamp" ] && grep -qxF "source=$want_source" "$stamp" || return 1
  for extra in "$@"; do grep -qxF "extra=$extra" "$stamp" || return 1; done
}
write_stamp() {
  local stamp=$1 source=$2 extra
  shift 2
  { printf 'source=%s\n' "$source"; for extra in "$@"; do printf 'extra=%s\n' "$extra"; done; } >"$stamp.tmp"
  mv -f "$stamp.tmp" "$stamp"
}

# install_file SRC DEST MODE: copies only if the content differs; sets CHANGED=1 then.
install_file() {
  local src=$1 dest=$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    if [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then run chmod "$mode" "$dest"; note "fixed mode of $dest"; fi
    ok "$dest unchanged"
    return
  fi
  run install -D -m "$mode" "$src" "$dest"
  cmp -s "$src" "$dest" || die "$dest does not match $src after copying"
  CHANGED=1
  ok "$dest installed from ${src#"$REPO"/}"
}

# install_config RENDERED DEST MODE [INSTALL_OPTIONS]: creates DEST if absent, never overwrites it; RENDERED is also
# kept as DEST.example so an edited config can be compared with the current template.
install_config() {
  local rendered=$1 dest=$2 mode=$3
  shift 3 # the rest: install(1) owner options for a new file
  if ! { [ -f "$dest.example" ] && cmp -s "$rendered" "$dest.example"; }; then
    run install -m 0644 "$rendered" "$dest.example"
  fi
  if [ -e "$dest" ]; then
    if cmp -s "$rendered" "$dest"; then
      ok "$dest unchanged (same as the template)"
    else
      ok "$dest kept as it is (edited; the current template is $dest.example)"
    fi
  else
    run install -m "$mode" "$@" "$rendered" "$dest"
    cmp -s "$rendered" "$dest" || die "$dest does not match the template after writing"
    CHANGED=1
    ok "$dest created"
  fi
}

# check_config PYTHON FILE [EXPECTED_JSON]: the daemon's own loader must accept it; if given,
# the listed keys ("section.key": value) must have these values.
check_config() {
  local py=$1 file=$2 expected=${3:-'{}'} out
  out=$("$py" - "$file" "$expected" 2>&1 <<'PY'
import json, sys
path, expected = sys.argv[1], json.loads(sys.argv[2])
try:
    from callrec.config import ConfigError, load
except ImportError:  # no venv yet (--config-only): at least it must be valid TOML
    import tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        sys.exit(f"{path}: {exc}")
    def get(key):
        node = data
        for part in key.split("."):
            node = node[part]
        return node
    how = "TOML syntax only (callrec not importable)"
else:
    try:
        cfg = load(path)
    except ConfigError as exc:
        sys.exit(str(exc))
    def get(key):
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        return node
    how = "callrec.config.load"
try:
    bad = [f"{k} = {get(k)!r}, expected {v!r}" for k, v in expected.items() if get(k) != v]
except (KeyError, AttributeError) as exc:
    sys.exit(f"missing key {exc}")
if bad:
    sys.exit("; ".join(bad))
print(how)
PY
  ) || die "config $file is not usable: $out"
  ok "$file valid ($out)"
}

# config_value PYTHON FILE KEY: one value from a valid config (defaults applied).
config_value() {
  "$1" -c 'import sys
from callrec.config import load
node = load(sys.argv[1])
for part in sys.argv[2].split("."):
    node = getattr(node, part)
print(node)' "$2" "$3"
}

prompts_ensure() {
  # prompts_ensure DIR CMD...: generates fr.wav and en.wav with CMD DIR if either is missing.
  local dir=$1 f absent=0
  shift
  for f in fr en; do [ -s "$dir/$f.wav" ] || absent=1; done
  if [ "$absent" = 0 ]; then
    ok "prompts present in $dir (not regenerated)"
  else
    run "$@" "$dir"
  fi
  for f in fr en; do
    [ -s "$dir/$f.wav" ] || die "$dir/$f.wav missing after 'callrec prompts generate'"
    if command -v soxi >/dev/null 2>&1; then
      try soxi "$dir/$f.wav" || die "$dir/$f.wav is not a readable sound file"
    fi
  done
  [ "$absent" = 0 ] || ok "prompts generated: $dir/fr.wav, $dir/en.wav"
}

http_answers() {
  # http_answers PYTHON URL [CERT]: true if anything answers HTTP there (any status counts, a
  # redirect too: it is not followed). An https URL is trusted with exactly CERT.
  "$1" - "$2" "${3:-}" <<'PY' >/dev/null 2>&1
import ssl, sys, urllib.error, urllib.request
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
handlers = [Keep()]
if sys.argv[2]:
    context = ssl.create_default_context(cafile=sys.argv[2])
    context.check_hostname = False  # the certificate itself is the trust anchor
    handlers.append(urllib.request.HTTPSHandler(context=context))
try:
    urllib.request.build_opener(*handlers).open(sys.argv[1], timeout=2).close()
except urllib.error.HTTPError:
    pass
PY
}

# --- Production: install ------------------------------------------------------------------------
check_platform() {
  local model=
  if [ -r /proc/device-tree/model ]; then model=$(tr -d '\0' </proc/device-tree/model); fi
  case $model in
    "Raspberry Pi"*) ok "$model, $(uname -m)" ;;
    *) warn "not a Raspberry Pi (${model:-no device-tree model}, $(uname -m)): installing anyway, but without the HAT the daemon will not find its serial port and codec" ;;
  esac
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    (. /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]) || warn "not bookworm: $(. /etc/os-release && echo "${PRETTY_NAME:-unknown}")"
  fi
  if systemd_running; then ok "systemd is PID 1"; else note "systemd is not running (container or chroot): the service will be installed and enabled, not started"; fi
}

check_boot_config() {
  # Only reports: editing a Pi's boot files unasked could leave it unbootable.
  local cfg cmdline
  for cfg in /boot/firmware/config.txt /boot/config.txt; do [ -f "$cfg" ] && break; done
  if [ ! -f "$cfg" ]; then note "no /boot/firmware/config.txt: not a Raspberry Pi OS boot, nothing to check"; return; fi
  grep -Eq '^[[:space:]]*enable_uart=1' "$cfg" || warn "$cfg lacks enable_uart=1 (the MCU's UART)"
  if grep -Eq '^[[:space:]]*dtoverlay=(disable-bt|miniuart-bt)' "$cfg"; then
    ok "$cfg moves Bluetooth off the PL011 UART"
  else
    warn "$cfg: on Pi 3/4 add dtoverlay=disable-bt so the MCU gets the PL011 (ttyAMA0)"
  fi
  grep -Eq '^[[:space:]]*dtparam=i2s=on' "$cfg" || warn "$cfg lacks dtparam=i2s=on (the codec's I2S), unless the HAT's EEPROM sets it"
  cmdline=$(dirname "$cfg")/cmdline.txt
  if [ -f "$cmdline" ] && grep -Eq 'console=(serial0|ttyAMA0|ttyS0)' "$cmdline"; then
    warn "$cmdline has a serial console on the MCU's UART: remove console=serial0,... (raspi-config: Interface > Serial: login shell No, hardware Yes)"
  fi
  ok "boot configuration checked (warnings above, if any, are to fix by hand)"
}

ensure_user() {
  local g groups=(audio dialout gpio) shell
  for g in "${groups[@]}" "$PROD_USER"; do
    if getent group "$g" >/dev/null; then continue; fi
    run groupadd --system "$g"
    note "created group $g"
  done
  if ! id "$PROD_USER" >/dev/null 2>&1; then
    run useradd --system --gid "$PROD_USER" --groups "$(IFS=,; echo "${groups[*]}")" \
      --home-dir "$PROD_DATA" --no-create-home --shell /usr/sbin/nologin \
      --comment "callrec call recorder" "$PROD_USER"
    note "created system user $PROD_USER"
  fi
  for g in "${groups[@]}"; do
    in_group "$PROD_USER" "$g" || { run usermod -a -G "$g" "$PROD_USER"; note "added $PROD_USER to $g"; }
  done
  shell=$(getent passwd "$PROD_USER" | cut -d: -f7)
  if [ "$shell" != /usr/sbin/nologin ]; then run usermod -s /usr/sbin/nologin "$PROD_USER"; note "login shell of $PROD_USER set to nologin"; fi
  for g in "${groups[@]}"; do
    in_group "$PROD_USER" "$g" || die "$PROD_USER is not in group $g"
  done
  [ "$(getent passwd "$PROD_USER" | cut -d: -f7)" = /usr/sbin/nologin ] || die "$PROD_USER has a login shell"
  ok "user $PROD_USER ($(id "$PROD_USER")), no login shell"
}

# Copies the checkout without VCS, venvs and build leftovers, so that pip builds as root in a
# scratch folder (no root-owned files in the checkout) and the copy's hash names the source.
stage_source() {
  local stage=$1
  tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
    --exclude='*.egg-info' --exclude='__pycache__' --exclude='*.pyc' --exclude=./.pytest_cache \
    --exclude=./.ruff_cache -cf - . | tar -C "$stage" -xf -
  (cd "$stage" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# The checkout staged once (STAGE) and its hash (SOURCE): whether the venv is current is known
# before anything is touched, so the daemon is stopped only when its code will change.
STAGE=
SOURCE=
prod_stage() {
  STAGE=$(mktemp -d)
  CLEANUP_DIRS+=("$STAGE")
  SOURCE=$(stage_source "$STAGE")
}
venv_current() {
  local have want
  [ "$REINSTALL" = 0 ] || return 1
  have=$(py_version "$PROD_VENV/bin/python") && want=$(py_version "$(python_for_venvs)") \
    && [ "$have" = "$want" ] && stamp_matches "$PROD_VENV/.callrec-install" "$SOURCE" hat
}

prod_python_package() {
  local stage=$STAGE source=$SOURCE
  if [ "$REINSTALL" = 0 ] && stamp_matches "$PROD_VENV/.callrec-install" "$source" hat \
    && "$PROD_VENV/bin/python" -c 'import callrec, callrec_web, lgpio' >/dev/null 2>&1; then
    ok "callrec in $PROD_VENV is up to date with this checkout (source ${source:0:12}), not reinstalled"
  else
    note "installing callrec[hat] from this checkout (source ${source:0:12})"
    run "$PROD_VENV/bin/python" -m pip install --disable-pip-version-check --upgrade "${stage}[hat]"
    write_stamp "$PROD_VENV/.callrec-install" "$source" hat
    VENV_CHANGED=1
  fi
  try "$PROD_VENV/bin/python" -c 'import callrec, callrec.config, callrec_web, lgpio' \
    || die "the venv cannot import callrec/lgpio (see log)"
  try "$PROD_VENV/bin/callrec" --help || die "$PROD_VENV/bin/callrec --help fails (see log)"
  ok "$PROD_VENV/bin/callrec runs"
}

# `path` owned by the service user with `mode` (octal, as stat prints it), fixed and logged if
# it was not (an install before the web UI's Settings left them root's), then verified.
ensure_owned() {
  local path=$1 mode=$2 why=$3 wanted="$PROD_USER:$PROD_USER $2"
  if [ "$(stat -c '%U:%G %a' "$path")" != "$wanted" ]; then
    note "owner/mode of $path was $(stat -c '%U:%G %a' "$path")"
    run chown "$PROD_USER:$PROD_USER" "$path"
    run chmod "0$mode" "$path"
    note "fixed owner/mode of $path to $PROD_USER:$PROD_USER 0$mode ($why)"
  fi
  [ "$(stat -c '%U:%G %a' "$path")" = "$wanted" ] || die "$path is not $PROD_USER:$PROD_USER 0$mode"
}

# The web UI's Settings replace callrec.toml atomically (a temporary file in /etc/callrec, then a
# rename), so the folder and the file are callrec's; nobody else may read them (secrets). The
# TLS folder inside stays root's (prod_tls). systemd's ConfigurationDirectory= does not chown.
prod_config() {
  local rendered template
  if [ ! -d "$PROD_CONFIG_DIR" ]; then run install -d -m 0750 -o "$PROD_USER" -g "$PROD_USER" "$PROD_CONFIG_DIR"; fi
  ensure_owned "$PROD_CONFIG_DIR" 750 "the web UI's Settings rewrite the config in it"
  # The template at the current config_version, so that a new file needs no migration and an
  # unedited one still compares equal to it.
  template=$(mktemp -d)
  CLEANUP_DIRS+=("$template")
  rendered=$template/callrec.toml
  run cp "$REPO/hw/config/callrec-hat.toml" "$rendered"
  if can_migrate; then
    run env -C / "$PROD_VENV/bin/callrec" config migrate --config "$rendered"
  fi
  install_config "$rendered" "$PROD_CONFIG" 0640 -o "$PROD_USER" -g "$PROD_USER"
  migrate_config
  ensure_owned "$PROD_CONFIG" 640 "writable by the web UI's Settings, readable by nobody else: it may hold secrets"
  check_config "$PROD_VENV/bin/python" "$PROD_CONFIG"
}

# CALLREC_SKIP_PIP=1 may leave a venv from before `callrec config migrate` existed.
can_migrate() {
  if try "$PROD_VENV/bin/callrec" config migrate --help; then return 0; fi
  warn "$PROD_VENV/bin/callrec has no 'config migrate' (an older venv left by CALLREC_SKIP_PIP=1): the configuration is not migrated"
  return 1
}

# An older config_version is brought to the current one by the software's own migration
# (comments and values kept, the old file kept as callrec.toml.v<N>.bak); a newer one, or a
# file the daemon would refuse, stops the install with the reason and nothing changed.
migrate_config() {
  local out rc=0 line
  can_migrate || return 0
  out=$(env -C / "$PROD_VENV/bin/callrec" config migrate --config "$PROD_CONFIG" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then die "$PROD_CONFIG cannot be migrated (nothing was changed): $out"; fi
  case $out in
    *"migrated config_version"*)
      CHANGED=1
      while IFS= read -r line; do ok "migrated: ${line#"$PROD_CONFIG: "}"; done <<<"$out"
      ;;
    *) ok "${out#"$PROD_CONFIG: "}: no migration needed" ;;
  esac
}

prod_data() {
  local prompts data
  if [ ! -d "$PROD_DATA" ]; then run install -d -m 0700 -o "$PROD_USER" -g "$PROD_USER" "$PROD_DATA"; fi
  if [ "$(stat -c '%U:%G %a' "$PROD_DATA")" != "$PROD_USER:$PROD_USER 700" ]; then
    run chown "$PROD_USER:$PROD_USER" "$PROD_DATA"
    run chmod 0700 "$PROD_DATA"
    note "fixed owner/mode of $PROD_DATA"
  fi
  ok "$PROD_DATA is $(stat -c '%U:%G %a' "$PROD_DATA")"
  data=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" storage.data_dir)
  if [ "$data" != "$PROD_DATA" ] && [ ! -d "$data" ]; then
    warn "storage.data_dir = $data does not exist (a USB disk not mounted?): the daemon will fail until it does"
  fi
  prompts=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" announcement.directory)
  if [ ! -d "$prompts" ]; then run install -d -m 0700 -o "$PROD_USER" -g "$PROD_USER" "$prompts"; fi
  # Generated as callrec, from /, so the files are its own and the checkout need not be readable.
  prompts_ensure "$prompts" env -C / runuser -u "$PROD_USER" -- "$PROD_VENV/bin/callrec" prompts generate
}

prod_alsa_udev() {
  install_file "$REPO/hw/alsa/callrec-hat.conf" "$PROD_ALSA" 0644
  if command -v aplay >/dev/null 2>&1; then
    local pcms
    pcms=$(aplay -L 2>/dev/null || true)
    grep -qx 'callrec-line' <<<"$pcms" || die "ALSA does not list the PCM callrec-line after installing $PROD_ALSA"
    ok "ALSA knows the PCM callrec-line"
    if ! grep -qw callrechat /proc/asound/cards 2>/dev/null; then
      warn "no ALSA card 'callrechat' (is the HAT's codec overlay loaded? see hw/alsa/callrec-hat.conf)"
    fi
  fi
  local before=$CHANGED
  CHANGED=0
  install_file "$REPO/hw/udev/99-callrec.rules" "$PROD_UDEV" 0644
  if [ "$CHANGED" = 1 ] && command -v udevadm >/dev/null 2>&1 && systemd_running; then
    run udevadm control --reload-rules
    run udevadm trigger --subsystem-match=tty --action=change
    ok "udev rules reloaded"
  elif [ "$CHANGED" = 1 ]; then
    note "udev not running here: the rule applies from the next boot"
  fi
  CHANGED=$((before | CHANGED))
}

# The optional USB stick (hw/USB.md): the udev rule pulls in the mount unit when a stick labelled
# CALLREC appears. Nothing is enabled and the daemon is not restarted: callrec.service does not
# depend on the stick, it notices mounts and unmounts by itself.
prod_usb_units() {
  local before=$CHANGED rule_changed unit_changed
  # The mount point exists before the daemon starts, so that its sandbox (ReadWritePaths)
  # covers a stick mounted later. Root-owned: with no stick in, callrec cannot write there.
  if [ ! -d /media/callrec ]; then run install -d -m 0755 /media/callrec; fi
  CHANGED=0
  install_file "$REPO/hw/udev/99-callrec-usb.rules" "$PROD_USB_UDEV" 0644
  rule_changed=$CHANGED
  CHANGED=0
  install_file "$REPO/systemd/media-callrec.mount" "$PROD_USB_MOUNT" 0644
  unit_changed=$CHANGED
  CHANGED=$before
  if command -v systemd-analyze >/dev/null 2>&1; then
    try systemd-analyze verify "$PROD_USB_MOUNT" || die "systemd-analyze verify $PROD_USB_MOUNT failed (see log)"
    ok "systemd-analyze verify: no problems"
  fi
  # The unit must be known before udev pulls it in.
  if [ "$unit_changed" = 1 ] && command -v systemctl >/dev/null 2>&1 && systemd_running; then
    run systemctl daemon-reload
    ok "systemd reloaded"
  fi
  if [ "$rule_changed" = 1 ] && command -v udevadm >/dev/null 2>&1 && systemd_running; then
    run udevadm control --reload-rules
    # A stick that is already plugged in is mounted now, not at the next plug or boot.
    run udevadm trigger --subsystem-match=block --property-match=ID_FS_LABEL=CALLREC --action=change
    ok "udev rules reloaded"
  elif [ "$rule_changed" = 1 ]; then
    note "udev not running here: the rule applies from the next boot"
  fi
}

prod_unit() {
  local unit_changed=0 before=$CHANGED i
  CHANGED=0
  install_file "$REPO/systemd/callrec.service" "$PROD_UNIT" 0644
  unit_changed=$CHANGED
  CHANGED=$((before | CHANGED))
  if command -v systemd-analyze >/dev/null 2>&1; then
    try systemd-analyze verify "$PROD_UNIT" || die "systemd-analyze verify $PROD_UNIT failed (see log)"
    ok "systemd-analyze verify: no problems"
  fi
  if ! command -v systemctl >/dev/null 2>&1; then
    warn "no systemctl: the unit is installed but not enabled"
    return
  fi
  if ! systemd_running; then
    try systemctl enable callrec.service || die "systemctl enable failed (see log)"
    ok "enabled (starts at boot); not started: systemd is not PID 1 here"
    return
  fi
  if [ "$unit_changed" = 1 ]; then run systemctl daemon-reload; ok "systemd reloaded"; fi
  if ! systemctl is-enabled --quiet callrec.service; then run systemctl enable callrec.service; fi
  systemctl is-enabled --quiet callrec.service || die "callrec.service is not enabled"
  ok "callrec.service enabled"
  if [ "$CHANGED" = 1 ] || [ "$VENV_CHANGED" = 1 ] || ! systemctl is-active --quiet callrec.service; then
    try systemctl reset-failed callrec.service || true
    run systemctl restart callrec.service
    note "callrec.service (re)started"
  else
    ok "callrec.service running and nothing changed: not restarted (no call is cut)"
  fi
  local host port url cert=""
  host=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.host)
  port=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.port)
  case $host in 0.0.0.0 | "" | ::) host=127.0.0.1 ;; esac
  url="http://$host:$port/"
  if [ "$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_on)" = True ]; then
    # The plain port only redirects: the UI itself must answer over HTTPS, with our certificate.
    url="https://$host:$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_port)/"
    cert=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_cert_file)
  fi
  for i in $(seq 60); do
    systemctl is-active --quiet callrec.service || break
    if http_answers "$PROD_VENV/bin/python" "$url" "$cert"; then break; fi
    sleep 0.5
  done
  if ! systemctl is-active --quiet callrec.service || ! http_answers "$PROD_VENV/bin/python" "$url" "$cert" \
    || ! http_answers "$PROD_VENV/bin/python" "http://$host:$port/"; then
    journalctl -u callrec.service -n 30 --no-pager 2>&1 | sed 's/^/    | /' >&2 || true
    die "callrec.service is not serving $url (journalctl -u callrec shows why)"
  fi
  ok "callrec.service active, web UI answers on $url (after ${i} checks)"
}

# The web UI advertised over mDNS/DNS-SD (_http._tcp on web.port, TXT path=/; with TLS on,
# also _https._tcp on web.tls_port, and the http one leads to the redirect): avahi-daemon
# reads /etc/avahi/services by itself; reloaded anyway when the file changed.
prod_mdns() {
  local port host tls tls_port rendered before=$CHANGED what
  port=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.port)
  host=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.host)
  tls=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_on)
  tls_port=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_port)
  [[ $port =~ ^[0-9]+$ ]] || die "web.port is not a number: $port"
  [[ $tls_port =~ ^[0-9]+$ ]] || die "web.tls_port is not a number: $tls_port"
  rendered=$(mktemp)
  CLEANUP_FILES+=("$rendered")
  sed -e "/<type>_http._tcp</,/<\/service>/ s|<port>[0-9]*</port>|<port>$port</port>|" \
    -e "/<type>_https._tcp</,/<\/service>/ s|<port>[0-9]*</port>|<port>$tls_port</port>|" \
    "$REPO/hw/avahi/callrec.service" >"$rendered"
  what="_http._tcp on port $port and _https._tcp on port $tls_port"
  if [ "$tls" != True ]; then
    sed -i '/<!-- https -->/,/<!-- \/https -->/d' "$rendered"
    what="_http._tcp on port $port"
    tls_port=""
  fi
  CHANGED=0
  install_file "$rendered" "$PROD_AVAHI" 0644
  "$PROD_VENV/bin/python" - "$PROD_AVAHI" "$port" "$tls_port" <<'PY' >>"$LOG" 2>&1 || die "$PROD_AVAHI is not a valid avahi service file for $what (see log)"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
services = sorted((s.findtext("type"), s.findtext("port")) for s in root.iter("service"))
wanted = [("_http._tcp", sys.argv[2])] + ([("_https._tcp", sys.argv[3])] if sys.argv[3] else [])
assert root.tag == "service-group" and services == wanted, services
PY
  ok "$PROD_AVAHI advertises $what"
  if [ "$CHANGED" = 1 ] && systemd_running && systemctl is-active --quiet avahi-daemon.service; then
    try systemctl reload avahi-daemon.service || warn "avahi-daemon did not reload: the advertisement applies after its restart"
  fi
  CHANGED=$before # the daemon does not read this file: no restart for it
  case $host in
    127.* | ::1 | localhost) warn "web.host = $host: the web UI is not reachable from the LAN, so the advertisement leads nowhere" ;;
  esac
}

# http://callrec.local needs the hostname callrec. Changed only from Raspberry Pi OS's default.
prod_hostname() {
  local current
  current=$(tr -d '[:space:]' 2>/dev/null <"$ETC_HOSTNAME" || true)
  if [ -z "$current" ]; then current=$(hostname 2>/dev/null || true); fi
  if [ "$current" != "$PI_DEFAULT_HOSTNAME" ]; then
    ok "hostname '$current' kept (only Raspberry Pi OS's default '$PI_DEFAULT_HOSTNAME' is changed): mDNS name $current.local"
    return
  fi
  note "hostname is Raspberry Pi OS's default '$PI_DEFAULT_HOSTNAME': renaming it to '$APPLIANCE_HOSTNAME' so that http://$APPLIANCE_HOSTNAME.local finds the box"
  # /etc/hosts first: sudo and others resolve their own hostname through the 127.0.1.1 line.
  if grep -Eq '^127\.0\.1\.1[[:space:]]' "$ETC_HOSTS" 2>/dev/null; then
    run sed -i -E "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$APPLIANCE_HOSTNAME/" "$ETC_HOSTS"
  else
    printf '127.0.1.1\t%s\n' "$APPLIANCE_HOSTNAME" >>"$ETC_HOSTS"
  fi
  if systemd_running && command -v hostnamectl >/dev/null 2>&1; then
    run hostnamectl set-hostname "$APPLIANCE_HOSTNAME" # /etc/hostname and the running name
  else
    # A chroot or image build: the file only (setting the running name would rename the host
    # the image is built on); the name applies from the next boot.
    printf '%s\n' "$APPLIANCE_HOSTNAME" >"$ETC_HOSTNAME"
  fi
  [ "$(tr -d '[:space:]' <"$ETC_HOSTNAME")" = "$APPLIANCE_HOSTNAME" ] || die "$ETC_HOSTNAME does not say $APPLIANCE_HOSTNAME"
  grep -Eq "^127\.0\.1\.1[[:space:]]+$APPLIANCE_HOSTNAME\$" "$ETC_HOSTS" || die "$ETC_HOSTS has no 127.0.1.1 line for $APPLIANCE_HOSTNAME"
  if systemd_running && systemctl is-active --quiet avahi-daemon.service; then
    try systemctl restart avahi-daemon.service || warn "avahi-daemon did not restart: callrec.local answers after the next boot"
  fi
  ok "hostname changed from '$PI_DEFAULT_HOSTNAME' to '$APPLIANCE_HOSTNAME' ($ETC_HOSTNAME, $ETC_HOSTS): mDNS name $APPLIANCE_HOSTNAME.local"
}

# The web UI's HTTPS certificate (when web.tls_on): self-signed for this host's name, NAME.local
# and its addresses, EC P-256, 10 years, made by `callrec tls generate` (openssl) only if missing,
# so that a re-install keeps the certificate browsers already accepted. The key is
# root:callrec 0640 (the service reads it, nobody else); the certificate is public.
prod_tls() {
  local cert key name fp
  TLS_FINGERPRINT=""
  if [ "$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_on)" != True ]; then
    note "web.tls is off for this configuration (web.tls = \"off\", or web.host on loopback): no certificate needed"
    return
  fi
  cert=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_cert_file)
  key=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_key_file)
  # Our own folder in the ConfigurationDirectory; one named in the config is left as it is.
  if [ ! -d "$PROD_TLS_DIR" ]; then run install -d -m 0750 -o root -g "$PROD_USER" "$PROD_TLS_DIR"; fi
  [ "$(stat -c '%U:%G %a' "$PROD_TLS_DIR")" = "root:$PROD_USER 750" ] \
    || { run chown "root:$PROD_USER" "$PROD_TLS_DIR"; run chmod 0750 "$PROD_TLS_DIR"; note "fixed owner/mode of $PROD_TLS_DIR"; }
  if [ -s "$cert" ] && [ -s "$key" ]; then
    ok "certificate $cert kept (browsers that accepted it keep trusting it)"
  else
    command -v openssl >/dev/null 2>&1 || die "the openssl command is missing (apt-get install openssl)"
    name=$(tr -d '[:space:]' 2>/dev/null <"$ETC_HOSTNAME" || true)
    name=${name:-$APPLIANCE_HOSTNAME}
    # --force: half a pair (one of the two files) is useless and replaced.
    run env -C / "$PROD_VENV/bin/callrec" tls generate --config "$PROD_CONFIG" --name "$name" --force
    CHANGED=1
    note "made a self-signed certificate for $name, $name.local and this host's addresses (10 years)"
  fi
  if [ "$(stat -c '%U:%G %a' "$key")" != "root:$PROD_USER 640" ]; then
    run chown "root:$PROD_USER" "$key"
    run chmod 0640 "$key"
    note "fixed owner/mode of $key to root:$PROD_USER 0640"
  fi
  if [ "$(stat -c '%a' "$cert")" != 644 ]; then run chmod 0644 "$cert"; fi
  [ "$(stat -c '%a' "$key")" = 640 ] || die "$key is not 0640"
  fp=$(env -C / "$PROD_VENV/bin/callrec" tls fingerprint --config "$PROD_CONFIG" 2>>"$LOG") \
    || die "the certificate $cert cannot be read (see log)"
  try "$PROD_VENV/bin/python" -c 'import sys; from callrec.tls import server_context; server_context(*sys.argv[1:])' "$cert" "$key" \
    || die "the certificate $cert and key $key do not make a working TLS server (see log)"
  TLS_FINGERPRINT=$fp
  ok "certificate $cert, key $key (root:$PROD_USER 0640), SHA-256 $fp"
}

# --- Production: upgrade in place ---------------------------------------------------------------
# Any piece of an earlier install makes this run an upgrade: it keeps $PROD_CONFIG_DIR and
# $PROD_DATA, and verifies at the end that the files it kept are unchanged.
UPGRADE=0
OLD_VERSION=
NEW_VERSION=
KEPT_MANIFEST=
detect_install() {
  NEW_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml" | head -n 1)
  if [ -e "$PROD_VENV/.callrec-install" ] || [ -f "$PROD_UNIT" ] || [ -f "$PROD_CONFIG" ]; then
    UPGRADE=1
    OLD_VERSION=$("$PROD_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("callrec"))' 2>/dev/null) \
      || OLD_VERSION="(version unknown: no working venv)"
    ok "upgrade: callrec $OLD_VERSION is installed here; upgrading it in place to $NEW_VERSION"
    note "kept as they are: $PROD_CONFIG_DIR (configuration, HTTPS certificate) and $PROD_DATA (recordings, keys, accounts)"
  else
    ok "new install of callrec $NEW_VERSION (no earlier install found)"
  fi
}

service_active() { systemd_running && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet callrec.service; }

# The code is about to change under the daemon: stop it first (a call in progress would be cut:
# the guide says to upgrade while no call is going on). prod_unit starts it again and checks it.
stop_for_upgrade() {
  if ! systemd_running; then
    note "systemd is not PID 1 here (container or chroot): no running service to stop"
    return
  fi
  if ! service_active; then ok "callrec.service is not running: nothing to stop"; return; fi
  run systemctl stop callrec.service
  if service_active; then die "callrec.service is still running after systemctl stop"; fi
  ok "callrec.service stopped for the upgrade (started again at the end)"
}

# data_manifest DIR...: size, modification time and path of every file, sorted. The list stays
# in a temporary file (paths are not logged: only counts).
data_manifest() {
  local d
  for d in "$@"; do
    if [ -d "$d" ]; then find "$d" -xdev -type f -printf '%s %T@ %p\n'; fi
  done | LC_ALL=C sort
}

# Taken once the daemon is stopped (a running daemon changes its index and adds recordings).
snapshot_kept() {
  [ "$UPGRADE" = 1 ] || return 0
  if service_active; then
    note "callrec.service keeps running (its code does not change): the data it manages is not compared"
    return
  fi
  KEPT_MANIFEST=$(mktemp)
  CLEANUP_FILES+=("$KEPT_MANIFEST")
  data_manifest "$PROD_DATA" "$PROD_TLS_DIR" >"$KEPT_MANIFEST"
  ok "$(wc -l <"$KEPT_MANIFEST") files in $PROD_DATA and $PROD_TLS_DIR noted, to check that they are kept"
}

verify_kept() {
  local after changed n
  [ -n "$KEPT_MANIFEST" ] || return 0
  after=$(mktemp)
  CLEANUP_FILES+=("$after")
  data_manifest "$PROD_DATA" "$PROD_TLS_DIR" >"$after"
  n=$(wc -l <"$KEPT_MANIFEST")
  changed=$(LC_ALL=C comm -23 "$KEPT_MANIFEST" "$after" | wc -l)
  [ "$changed" -eq 0 ] || die "$changed of the $n files that were in $PROD_DATA and $PROD_TLS_DIR before the upgrade are missing or changed"
  ok "kept: the $n files that were in $PROD_DATA (recordings, keys, accounts, prompts) and $PROD_TLS_DIR are all there, unchanged (size and time)"
}

prod_install() {
  [ "$(id -u)" -eq 0 ] || die "the appliance install needs root: sudo ./$PROG"
  prod_log_init
  say "callrec appliance install from $REPO (log: $LOG)"
  step "Existing install"
  detect_install
  step "Checking the platform"
  check_platform
  step "System packages"
  apt_ensure "${PROD_PACKAGES[@]}"
  step "User $PROD_USER and groups"
  ensure_user
  step "Python venv $PROD_VENV"
  if is_true "${CALLREC_SKIP_PIP:-}"; then
    [ -x "$PROD_VENV/bin/callrec" ] || die "CALLREC_SKIP_PIP=1 but $PROD_VENV/bin/callrec is missing"
    warn "CALLREC_SKIP_PIP=1: venv left as it is"
  else
    prod_stage
    if [ "$UPGRADE" = 1 ] && ! venv_current; then stop_for_upgrade; fi
    venv_ensure "$PROD_VENV"
    prod_python_package
  fi
  snapshot_kept
  step "Configuration $PROD_CONFIG"
  prod_config
  step "Data folder $PROD_DATA and prompts"
  prod_data
  step "ALSA PCM callrec-line and udev rule"
  prod_alsa_udev
  step "USB stick: udev rule and mount unit"
  prod_usb_units
  step "Raspberry Pi boot configuration (UART, I2S)"
  check_boot_config
  step "Hostname and mDNS (http://$APPLIANCE_HOSTNAME.local)"
  prod_hostname
  prod_mdns
  step "HTTPS certificate of the web UI"
  prod_tls
  if [ -n "$KEPT_MANIFEST" ]; then
    step "Data kept by the upgrade"
    verify_kept
  fi
  step "systemd unit"
  prod_unit
  step "Done"
  say ""
  local address
  address=$(hostname -I 2>/dev/null | awk '{print $1}')
  local scheme=http port
  port=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.port)
  if [ -n "$TLS_FINGERPRINT" ]; then
    scheme=https
    port=$(config_value "$PROD_VENV/bin/python" "$PROD_CONFIG" web.tls_port)
  fi
  if [ "$UPGRADE" = 1 ]; then
    say "Upgrade done: callrec $OLD_VERSION -> $NEW_VERSION in place; configuration, certificate, recordings and keys kept."
  fi
  say "callrec is installed. Web UI: $scheme://${address:-$(hostname)}:$port/"
  say "On the LAN (mDNS): $scheme://$(tr -d '[:space:]' <"$ETC_HOSTNAME").local:$port/"
  if [ -n "$TLS_FINGERPRINT" ]; then
    say "The browser warns on the first visit (the certificate is the box's own): accept it only if"
    say "the SHA-256 fingerprint it shows is $TLS_FINGERPRINT"
  fi
  if systemd_running && systemctl is-active --quiet callrec.service; then
    local code
    if code=$(env -C / runuser -u "$PROD_USER" -- "$PROD_VENV/bin/callrec" setup-code --config "$PROD_CONFIG" 2>>"$LOG"); then
      say "First-start setup code (to create the admin account): $code"
    else
      say "Setup code: sudo -u $PROD_USER $PROD_VENV/bin/callrec setup-code --config $PROD_CONFIG"
    fi
  fi
  say "Config: $PROD_CONFIG (edit, then: systemctl restart callrec). Log of this install: $LOG"
  say "Next steps (first setup, a test call, troubleshooting): $REPO/docs/technician-guide.md"
}

# --- Production: uninstall ----------------------------------------------------------------------
prod_uninstall() {
  [ "$(id -u)" -eq 0 ] || die "uninstalling needs root: sudo ./$PROG --uninstall"
  if [ "$PURGE" = 1 ] && [ "$YES" = 0 ]; then
    # Asked before anything is touched.
    [ -t 0 ] || die "refusing to delete the recordings without a terminal to ask: add --yes"
    local answer
    read -r -p "Delete ALL recordings in $PROD_DATA for good? Type 'yes': " answer
    [ "$answer" = yes ] || die "not confirmed: nothing was removed"
  fi
  prod_log_init
  say "callrec uninstall (log: $LOG)"
  local data=
  if [ -f "$PROD_CONFIG" ]; then
    data=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb")).get("storage", {}).get("data_dir", ""))' "$PROD_CONFIG" 2>/dev/null || true)
  fi
  step "systemd unit"
  if command -v systemctl >/dev/null 2>&1 && systemd_running; then
    try systemctl disable --now callrec.service || true
    systemctl is-active --quiet callrec.service && die "callrec.service is still running"
    ok "callrec.service stopped and disabled"
  elif command -v systemctl >/dev/null 2>&1 && [ -f "$PROD_UNIT" ]; then
    try systemctl disable callrec.service || true
    note "systemd is not running here: only disabled"
  fi
  if [ -f "$PROD_UNIT" ]; then run rm -f "$PROD_UNIT"; fi
  if systemd_running; then
    run systemctl daemon-reload
    try systemctl reset-failed callrec.service || true
  fi
  [ ! -e "$PROD_UNIT" ] || die "$PROD_UNIT still there"
  ok "$PROD_UNIT removed"
  step "USB stick: mount unit and udev rule"
  if command -v systemctl >/dev/null 2>&1 && systemd_running; then
    # Unmounts a stick that is in (the daemon is stopped by now); its recordings stay on it.
    try systemctl stop media-callrec.mount || true
  fi
  run rm -f "$PROD_USB_MOUNT" "$PROD_USB_UDEV"
  if systemd_running; then run systemctl daemon-reload; fi
  if command -v udevadm >/dev/null 2>&1 && systemd_running; then try udevadm control --reload-rules || true; fi
  for f in "$PROD_USB_MOUNT" "$PROD_USB_UDEV"; do [ ! -e "$f" ] || die "$f still there"; done
  ok "removed $PROD_USB_MOUNT, $PROD_USB_UDEV"
  step "mDNS advertisement"
  run rm -f "$PROD_AVAHI"
  [ ! -e "$PROD_AVAHI" ] || die "$PROD_AVAHI still there"
  ok "removed $PROD_AVAHI (the hostname is left as it is)"
  step "venv, ALSA config, udev rule"
  if [ -d "$PROD_VENV" ]; then
    [ -f "$PROD_VENV/pyvenv.cfg" ] || die "$PROD_VENV is not a venv: not removing it"
    run rm -rf "$PROD_VENV"
  fi
  run rm -f "$PROD_ALSA" "$PROD_UDEV"
  if command -v udevadm >/dev/null 2>&1 && systemd_running; then try udevadm control --reload-rules || true; fi
  for f in "$PROD_VENV" "$PROD_ALSA" "$PROD_UDEV"; do [ ! -e "$f" ] || die "$f still there"; done
  ok "removed $PROD_VENV, $PROD_ALSA, $PROD_UDEV"
  step "Recordings"
  if [ "$PURGE" = 1 ]; then
    if [ -d "$PROD_DATA" ]; then
      local n
      n=$(find "$PROD_DATA" -type f | wc -l)
      run rm -rf "$PROD_DATA"
      [ ! -e "$PROD_DATA" ] || die "$PROD_DATA still there"
      ok "deleted $PROD_DATA ($n files: recordings, index, prompts): the recordings are gone"
    else
      ok "$PROD_DATA did not exist"
    fi
    if [ -n "$data" ] && [ "$data" != "$PROD_DATA" ] && [ -e "$data" ]; then
      warn "storage.data_dir = $data was NOT deleted (outside $PROD_DATA): remove it yourself"
    fi
  else
    ok "kept $PROD_DATA (recordings); delete with --uninstall --purge-recordings"
  fi
  step "Done"
  say "Kept: $PROD_CONFIG_DIR (config), user $PROD_USER, the log $LOG."
  say "To remove those too: rm -rf $PROD_CONFIG_DIR && userdel $PROD_USER && groupdel $PROD_USER"
}

# --- Development --------------------------------------------------------------------------------
VAR=$REPO/var
DEV_CONFIG=$VAR/callrec.toml
DEV_VENV=${CALLREC_VENV:-$REPO/.venv}

sed_escape() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }

# The sim template with every path under ./var and the web UI on loopback.
render_dev_config() {
  local v
  v=$(sed_escape "$VAR")
  printf '# Written by install.sh --dev from hw/config/callrec-sim.toml, paths under ./var.\n'
  printf '# Edit freely: install.sh never overwrites it (delete it to get a fresh copy).\n'
  sed -e "s|^runtime_dir = .*|runtime_dir = \"$v/run\"|" \
    -e "s|^serial_port = .*|serial_port = \"$v/run/sim-serial\"|" \
    -e "s|^sim_socket = .*|sim_socket = \"$v/run/sim.sock\"|" \
    -e "s|^directory = .*|directory = \"$v/data/prompts\"|" \
    -e "s|^data_dir = .*|data_dir = \"$v/data\"|" \
    -e "s|^key_binding_file = .*|key_binding_file = \"$v/sim/board-otp.key\"|" \
    -e 's|^host = .*|host = "127.0.0.1"|' \
    -e 's|^port = .*|port = 8080|' \
    -e "s|^tls_cert_file = .*|tls_cert_file = \"$v/tls/callrec.crt\"|" \
    -e "s|^tls_key_file = .*|tls_key_file = \"$v/tls/callrec.key\"|" \
    "$REPO/hw/config/callrec-sim.toml"
}

dev_python() {
  local extras=() pyproject_hash spec
  if [ "$WITH_TESTS" = 1 ]; then extras=(test); fi
  if is_true "${CALLREC_SKIP_PIP:-}"; then
    if [ ! -x "$DEV_VENV/bin/python" ] || [ ! -x "$DEV_VENV/bin/callrec" ]; then
      die "CALLREC_SKIP_PIP=1 but $DEV_VENV has no bin/python and bin/callrec"
    fi
    warn "CALLREC_SKIP_PIP=1: venv $DEV_VENV left as it is"
    return
  fi
  venv_ensure "$DEV_VENV"
  # Editable: code changes need no reinstall, only a changed pyproject.toml (deps, entry points).
  pyproject_hash="$(sha256_of "$REPO/pyproject.toml") editable=$REPO"
  if [ "$REINSTALL" = 0 ] && stamp_matches "$DEV_VENV/.callrec-install" "$pyproject_hash" "${extras[@]}" \
    && [ "$("$DEV_VENV/bin/python" -c 'import callrec, os; print(os.path.realpath(callrec.__file__))' 2>/dev/null)" = "$REPO/firmware/callrec/__init__.py" ]; then
    ok "callrec installed editable from $REPO, pyproject.toml unchanged: pip not run"
  else
    spec=$REPO
    if [ ${#extras[@]} -gt 0 ]; then spec="${REPO}[$(IFS=,; echo "${extras[*]}")]"; fi
    note "pip install -e $spec"
    run "$DEV_VENV/bin/python" -m pip install --disable-pip-version-check -e "$spec"
    write_stamp "$DEV_VENV/.callrec-install" "$pyproject_hash" "${extras[@]}"
  fi
  [ "$("$DEV_VENV/bin/python" -c 'import callrec, os; print(os.path.realpath(callrec.__file__))' 2>/dev/null)" = "$REPO/firmware/callrec/__init__.py" ] \
    || die "callrec in $DEV_VENV is not the editable install of $REPO"
  try "$DEV_VENV/bin/callrec" --help || die "$DEV_VENV/bin/callrec --help fails (see log)"
  if [ "$WITH_TESTS" = 1 ]; then
    try "$DEV_VENV/bin/python" -m pytest --version || die "pytest missing from $DEV_VENV"
    try "$DEV_VENV/bin/ruff" --version || die "ruff missing from $DEV_VENV"
  fi
  ok "$DEV_VENV/bin/callrec runs"
  if [ "$WITH_TESTS" = 1 ]; then ok "pytest and ruff in $DEV_VENV"; fi
}

dev_var() {
  local rendered d
  case $VAR in *'"'* | *$'\n'* | *\\*) die "the checkout path $REPO contains a quote, backslash or newline: not usable in TOML" ;; esac
  # ./var/sim: the simulated board's own state (its stand-in for the Pi's OTP key, which
  # wraps the device key), apart from the data folder as the real OTP is apart from the card.
  for d in "$VAR" "$VAR/run" "$VAR/log" "$VAR/data" "$VAR/data/prompts" "$VAR/sim"; do
    if [ ! -d "$d" ]; then run mkdir -p "$d"; fi
  done
  chmod 0700 "$VAR/data" "$VAR/sim"
  ok "folders under $VAR"
  rendered=$(mktemp)
  CLEANUP_FILES+=("$rendered")
  render_dev_config >"$rendered"
  install_config "$rendered" "$DEV_CONFIG" 0600
  local py=python3
  if [ -x "$DEV_VENV/bin/python" ]; then py=$DEV_VENV/bin/python; fi
  if cmp -s "$rendered" "$DEV_CONFIG"; then
    check_config "$py" "$DEV_CONFIG" "{\"board.backend\": \"sim\", \"board.serial_port\": \"$VAR/run/sim-serial\", \"board.sim_socket\": \"$VAR/run/sim.sock\", \"storage.data_dir\": \"$VAR/data\", \"storage.key_binding\": \"file\", \"storage.key_binding_file\": \"$VAR/sim/board-otp.key\", \"announcement.directory\": \"$VAR/data/prompts\", \"runtime_dir\": \"$VAR/run\", \"web.host\": \"127.0.0.1\", \"web.port\": 8080}"
  else
    check_config "$py" "$DEV_CONFIG"
    local data
    if data=$(config_value "$py" "$DEV_CONFIG" storage.data_dir 2>/dev/null) && [ "${data#"$VAR"/}" = "$data" ]; then
      warn "$DEV_CONFIG keeps its data in $data, outside $VAR (a moved checkout?): delete it to get a fresh one"
    fi
  fi
}

dev_prompts() {
  local prompts
  prompts=$(config_value "$DEV_VENV/bin/python" "$DEV_CONFIG" announcement.directory) \
    || die "cannot read announcement.directory from $DEV_CONFIG"
  if [ ! -d "$prompts" ]; then run mkdir -p "$prompts"; fi
  # The prompts announce the refusal key this configuration sets.
  prompts_ensure "$prompts" env CALLREC_CONFIG="$DEV_CONFIG" "$DEV_VENV/bin/callrec" prompts generate
}

dev_install() {
  log_init "$VAR/log/install.log"
  say "callrec development setup in $REPO (log: $LOG)"
  if [ "$CONFIG_ONLY" = 0 ]; then
    step "System packages"
    local pkgs=("${DEV_PACKAGES[@]}")
    if [ "$WITH_TESTS" = 1 ]; then pkgs+=("${TEST_PACKAGES[@]}"); fi
    apt_ensure "${pkgs[@]}"
    step "Python venv $DEV_VENV"
    dev_python
  fi
  step "Dev config $DEV_CONFIG and folders"
  dev_var
  if [ "$CONFIG_ONLY" = 0 ]; then
    step "Prompts"
    dev_prompts
  fi
  step "Done"
  say "Dev setup ready. Start the simulated appliance: ./$PROG --dev --run"
  if [ "$WITH_TESTS" = 1 ]; then say "Tests: tests/run.sh (or $DEV_VENV/bin/python -m pytest -q)"; fi
}

# --- Development: run the simulated appliance ---------------------------------------------------
PIDS=()
NAMES=()
PULSE_DIR=
alive() {
  # A child that exited but is not yet reaped (zombie) counts as gone.
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
stop_pid() {
  local pid=$1 name=$2 i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "    $name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  say "    stopped $name (pid $pid)"
}
stop_started() {
  local i
  trap - EXIT INT TERM HUP
  set +e
  if [ ${#PIDS[@]} -gt 0 ] || [ -n "$PULSE_DIR" ]; then say "==> Stopping what this run started"; fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}" "${NAMES[i]}"; done
  if [ -n "$PULSE_DIR" ]; then
    PA_DIR=$PULSE_DIR "$REPO/hw/sim/pulse-line.sh" down >>"$LOG" 2>&1
    say "    stopped PulseAudio ($PULSE_DIR)"
  fi
  cleanup_files
}
start_bg() {
  # start_bg NAME LOGFILE CMD...: a background child, recorded to be stopped by pid.
  local name=$1 logfile=$2
  shift 2
  "$@" >>"$logfile" 2>&1 </dev/null &
  PIDS+=($!)
  NAMES+=("$name")
  note "started $name (pid $!), log: ${logfile#"$REPO"/}"
}
wait_for() {
  # wait_for SECONDS PID CMD...: polls CMD until it succeeds; fails if PID dies first.
  local seconds=$1 pid=$2 i
  shift 2
  for i in $(seq $((seconds * 10))); do
    if "$@"; then return 0; fi
    alive "$pid" || return 1
    sleep 0.1
  done
  return 1
}
show_log_tail() { say "--- last lines of $1:"; tail -n 20 "$1" | sed 's/^/    | /' >&2 || true; }

dev_run() {
  local py=$DEV_VENV/bin/python cli=$DEV_VENV/bin/callrec serial host port url code sim_pid run_pid demo_pid rc
  serial=$(config_value "$py" "$DEV_CONFIG" board.serial_port)
  host=$(config_value "$py" "$DEV_CONFIG" web.host)
  port=$(config_value "$py" "$DEV_CONFIG" web.port)
  url="http://$host:$port/"
  [ "$(config_value "$py" "$DEV_CONFIG" board.backend)" = sim ] || die "$DEV_CONFIG: board.backend is not \"sim\""
  if http_answers "$py" "$url"; then die "something already answers on $url: another instance? Stop it first"; fi
  trap stop_started EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  step "PulseAudio line model (hw/sim/pulse-line.sh)"
  PULSE_DIR=$VAR/pulse
  run env PA_DIR="$PULSE_DIR" "$REPO/hw/sim/pulse-line.sh" up
  # shellcheck disable=SC1091
  source "$PULSE_DIR/env.sh"
  pactl info >/dev/null 2>&1 || die "PulseAudio in $PULSE_DIR does not answer"
  ok "PulseAudio up, env from $PULSE_DIR/env.sh"

  step "Line simulator (callrec sim line)"
  start_bg "callrec sim line" "$VAR/log/sim-line.log" "$cli" sim line --config "$DEV_CONFIG"
  sim_pid=${PIDS[-1]}
  wait_for 20 "$sim_pid" test -e "$serial" \
    || { show_log_tail "$VAR/log/sim-line.log"; die "the simulator did not create $serial"; }
  ok "simulated MCU port $serial"

  step "Daemon (callrec run)"
  start_bg "callrec run" "$VAR/log/callrec.log" "$cli" run --config "$DEV_CONFIG"
  run_pid=${PIDS[-1]}
  wait_for 30 "$run_pid" http_answers "$py" "$url" \
    || { show_log_tail "$VAR/log/callrec.log"; die "the web UI did not answer on $url"; }
  alive "$sim_pid" || { show_log_tail "$VAR/log/sim-line.log"; die "the simulator exited"; }
  ok "web UI answers on $url"

  code=$("$cli" setup-code --config "$DEV_CONFIG" 2>>"$LOG") || code="(failed: see $LOG)"
  say ""
  say "    Web UI:      $url"
  say "    Setup code:  $code   (needed once, to create the admin account)"
  say "    Logs:        ${VAR#"$REPO"/}/log/callrec.log, ${VAR#"$REPO"/}/log/sim-line.log"
  say ""
  step "Demo caller (callrec sim demo --every 30); Ctrl-C stops everything"
  # In the background and waited for, so that a signal reaches the trap at once.
  "$cli" sim demo --config "$DEV_CONFIG" --every 30 </dev/null &
  demo_pid=$!
  PIDS+=("$demo_pid")
  NAMES+=("callrec sim demo")
  rc=0
  wait "$demo_pid" || rc=$?
  say "the demo caller exited (status $rc)"
  exit "$rc"
}

# --- Main ---------------------------------------------------------------------------------------
CLEANUP_DIRS=()
CLEANUP_FILES=()
CHANGED=0
VENV_CHANGED=0
cleanup_files() {
  if [ ${#CLEANUP_FILES[@]} -gt 0 ]; then rm -f "${CLEANUP_FILES[@]}"; fi
  if [ ${#CLEANUP_DIRS[@]} -gt 0 ]; then rm -rf "${CLEANUP_DIRS[@]}"; fi
}
trap cleanup_files EXIT

if [ "$MODE" = dev ]; then
  dev_install
  if [ "$RUN" = 1 ]; then dev_run; fi
elif [ "$UNINSTALL" = 1 ]; then
  prod_uninstall
else
  prod_install
fi
