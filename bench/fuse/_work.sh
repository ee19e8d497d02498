# Sourced by the FUSE benches that mount one riakfs at a time (metadata.sh, xattr_requests.sh):
# on exit, unmount $WORK/mnt, end the serving process $SERVER_PID (by its pid, never by name)
# and remove $WORK. Both are the sourcing script's variables.
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
