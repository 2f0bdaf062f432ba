#!/bin/bash
# Starts (up) or stops (down) a private PulseAudio that models the HAT's line audio with two
# 8 kHz null sinks, and writes an env file to source. No dbus, no sound card, no root needed.
#   line_in  : the far end plays into it; the recorder captures its monitor   (line -> box)
#   line_out : the box plays the announcement into it; the far end hears its monitor (box -> line)
# ALSA devices (in $PA_DIR/alsahome/.asoundrc, found by PortAudio by name):
#   callrec-line   : capture line_in.monitor,  playback line_out   (what the daemon opens)
#   callrec-farend : capture line_out.monitor, playback line_in    (what the simulator opens)
# usage: pulse-line.sh up|down     (PA_DIR defaults to ${TMPDIR:-/tmp}/callrec-pulse)
set -euo pipefail
PA_DIR=${PA_DIR:-${TMPDIR:-/tmp}/callrec-pulse}
case "${1:-up}" in
down)
  if [ -f "$PA_DIR/pulseaudio.pid" ]; then
    P=$(cat "$PA_DIR/pulseaudio.pid")
    kill "$P" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$P" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$P" 2>/dev/null || true
  fi
  rm -rf "$PA_DIR"
  exit 0 ;;
up) ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
mkdir -p "$PA_DIR/pulse" "$PA_DIR/state" "$PA_DIR/alsahome"
chmod 700 "$PA_DIR" "$PA_DIR/pulse"
cat > "$PA_DIR/env.sh" <<EOR
export XDG_RUNTIME_DIR="$PA_DIR"
export PULSE_RUNTIME_PATH="$PA_DIR/pulse"
export PULSE_STATE_PATH="$PA_DIR/state"
export PULSE_SERVER="unix:$PA_DIR/pulse/native"
export ALSA_CONFIG_PATH="$PA_DIR/asound.conf"
EOR
# shellcheck disable=SC1091
source "$PA_DIR/env.sh"
{
  # ALSA_CONFIG_PATH replaces the top-level configuration: take the system's alsa.conf but not
  # its conf.d hooks. Those declare every plugin of libasound2-plugins (jack, a52, lavrate...),
  # which PortAudio opens while listing devices: ~14 MB of libraries (ffmpeg's among them)
  # mapped into every process, for devices the simulator never uses.
  grep -v 'conf\.d"' /usr/share/alsa/alsa.conf
  echo 'pcm.!default { type pulse }'
  echo 'ctl.!default { type pulse }'
  echo 'pcm.callrec-line { type asym playback.pcm { type pulse device "line_out" } capture.pcm { type pulse device "line_in.monitor" } hint { show on description "callrec line (simulated)" } }'
  echo 'pcm.callrec-farend { type asym playback.pcm { type pulse device "line_in" } capture.pcm { type pulse device "line_out.monitor" } hint { show on description "callrec far end (simulated)" } }'
} > "$PA_DIR/asound.conf"
if pactl info >/dev/null 2>&1; then echo "pulseaudio already running"; exit 0; fi
setsid pulseaudio --daemonize=no -n --exit-idle-time=-1 --disallow-exit=yes --use-pid-file=yes \
  --log-target=file:"$PA_DIR/pulse.log" --log-level=notice \
  -L "module-native-protocol-unix auth-anonymous=1 socket=$PA_DIR/pulse/native" \
  -L "module-null-sink sink_name=line_in rate=8000 channels=1 format=s16le" \
  -L "module-null-sink sink_name=line_out rate=8000 channels=1 format=s16le" \
  </dev/null >"$PA_DIR/pulse.stdout" 2>&1 &
echo $! > "$PA_DIR/pulseaudio.pid"
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
pactl info >/dev/null 2>&1 || { echo "pulseaudio failed to start" >&2; cat "$PA_DIR/pulse.log" >&2; exit 1; }
echo "pulseaudio up (pid $(cat "$PA_DIR/pulseaudio.pid")); source $PA_DIR/env.sh"
