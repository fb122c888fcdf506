#!/usr/bin/env bash
# Installs the Thumbnailer app and worker as systemd services on a Linux VM:
#
#   /usr/local/bin/thumbnailer-app, /usr/local/bin/thumbnailer-worker   the release binaries
#   /etc/systemd/system/thumbnailer-{app,worker}.service                the units, enabled
#   /usr/lib/sysusers.d/thumbnailer.conf                                the thumbnailer user
#   /etc/thumbnailer/thumbnailer.env.example                            every setting, documented
#   /etc/thumbnailer/thumbnailer.env                                    your settings (0600; made
#                                                                       from the example once,
#                                                                       never overwritten)
#
# Safe to run again: unchanged files are left alone, an upgrade replaces the binaries and
# restarts what runs. Services start only once the connection string is filled in.
#
# usage: deploy/install.sh [--app-only | --worker-only] [--bin-dir DIR] [--root DIR] [--no-start]
#   --app-only / --worker-only   one VM for the app, others for workers
#   --bin-dir DIR                where the `app` and `worker` binaries are (default:
#                                target/release of this checkout, else this script's folder)
#   --root DIR                   install into DIR instead of / (images, tests): units are
#                                enabled offline, nothing is started
#   --no-start                   enable the services but do not start them now
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root=/
bin_dir=""
want_app=1
want_worker=1
start=1

while [ $# -gt 0 ]; do
  case "$1" in
    --app-only) want_worker=0 ;;
    --worker-only) want_app=0 ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a folder}"; shift ;;
    --bin-dir=*) bin_dir="${1#*=}" ;;
    --root) root="${2:?--root needs a folder}"; shift ;;
    --root=*) root="${1#*=}" ;;
    --no-start) start=0 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$want_app$want_worker" = 00 ]; then
  echo "install.sh: --app-only and --worker-only together install nothing" >&2
  exit 2
fi
if [ -z "$bin_dir" ]; then
  if [ -x "$here/../target/release/app" ] || [ -x "$here/../target/release/worker" ]; then
    bin_dir="$here/../target/release"
  else
    bin_dir="$here"
  fi
fi
mkdir -p "$root"
root="$(cd "$root" && pwd)"
live=0
[ "$root" = / ] && [ -d /run/systemd/system ] && live=1
if [ "$root" = / ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: installing into / needs root (sudo $0 $*)" >&2
  exit 1
fi
prefix="${root%/}"

units=()
[ "$want_app" = 1 ] && units+=(app)
[ "$want_worker" = 1 ] && units+=(worker)
for u in "${units[@]}"; do
  if [ ! -x "$bin_dir/$u" ]; then
    echo "install.sh: $bin_dir/$u is missing (cargo build --release -p app -p worker, or --bin-dir)" >&2
    exit 1
  fi
done

changed=()
# Copies $1 to $2 with mode $3 unless it is already there, byte for byte.
place() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    chmod "$3" "$2"
    return 0
  fi
  # A new file then a rename: a running binary is replaced, never written into.
  install -m "$3" "$1" "$2.new"
  mv -f "$2.new" "$2"
  changed+=("${2#"$prefix"}")
}

install -d -m 0755 "$prefix/usr/local/bin" "$prefix/etc/systemd/system" "$prefix/usr/lib/sysusers.d"
install -d -m 0755 "$prefix/etc/thumbnailer"
for u in "${units[@]}"; do
  place "$bin_dir/$u" "$prefix/usr/local/bin/thumbnailer-$u" 0755
  place "$here/thumbnailer-$u.service" "$prefix/etc/systemd/system/thumbnailer-$u.service" 0644
done
place "$here/thumbnailer.sysusers" "$prefix/usr/lib/sysusers.d/thumbnailer.conf" 0644
place "$here/thumbnailer.env.example" "$prefix/etc/thumbnailer/thumbnailer.env.example" 0644
env_file="$prefix/etc/thumbnailer/thumbnailer.env"
if [ ! -e "$env_file" ]; then
  install -m 0600 "$here/thumbnailer.env.example" "$env_file"
  changed+=("/etc/thumbnailer/thumbnailer.env")
fi

# The unprivileged user both services run as.
if command -v systemd-sysusers >/dev/null; then
  systemd-sysusers --root="$root" "$prefix/usr/lib/sysusers.d/thumbnailer.conf"
elif [ "$root" = / ]; then
  getent passwd thumbnailer >/dev/null ||
    useradd --system --user-group --no-create-home --home-dir / --shell /usr/sbin/nologin thumbnailer
else
  echo "install.sh: systemd-sysusers is missing: the thumbnailer user is not created under $root" >&2
fi

services=()
for u in "${units[@]}"; do services+=("thumbnailer-$u.service"); done
if [ "$live" = 1 ]; then
  systemctl daemon-reload
  systemctl enable --quiet "${services[@]}"
elif command -v systemctl >/dev/null; then
  systemctl --root="$root" enable --quiet "${services[@]}"
else
  # What `enable` does for WantedBy=multi-user.target.
  install -d -m 0755 "$prefix/etc/systemd/system/multi-user.target.wants"
  for s in "${services[@]}"; do
    ln -sfn "/etc/systemd/system/$s" "$prefix/etc/systemd/system/multi-user.target.wants/$s"
  done
fi

if [ "${#changed[@]}" -gt 0 ]; then
  printf 'installed: %s\n' "${changed[@]}"
else
  echo "installed: nothing changed"
fi
if grep -q '^AZURE_STORAGE_CONNECTION_STRING=.*<account>' "$env_file"; then
  echo "next: put your storage account's connection string in /etc/thumbnailer/thumbnailer.env,"
  echo "      then: systemctl start ${services[*]}"
  exit 0
fi
if [ "$live" = 1 ] && [ "$start" = 1 ]; then
  for s in "${services[@]}"; do
    if [ "${#changed[@]}" -gt 0 ] && systemctl is-active --quiet "$s"; then
      systemctl restart "$s"
    else
      systemctl start "$s"
    fi
  done
  systemctl --no-pager --lines=0 status "${services[@]}" || true
fi
