# Sourced by the FUSE benches that mount one riakfs at a time (metadata.sh, xattr_requests.sh)
# over $WORK/source at $WORK/mnt: mount_work BINARY [riakfs mount options...] and unmount_work
# per round; on exit, unmount, end the serving process $SERVER_PID (by its pid, never by name)
# and remove $WORK.

mount_work() {
  local binary=$1
  shift
  "$binary" mount --preset passthrough "$@" --pid-file "$WORK/pid" "$WORK/source" "$WORK/mnt"
  SERVER_PID=$(cat "$WORK/pid")
}

unmount_work() {
  umount "$WORK/mnt"
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
  SERVER_PID=""
}
cleanup() {
  set +e
  if grep -q " $WORK/mnt " /proc/self/mountinfo; then umount "$WORK/mnt" || umount -l "$WORK/mnt"; fi
  if [ -n "$SERVER_PID" ]; then
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
