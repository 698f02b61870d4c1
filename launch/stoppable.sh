# Sourced by the launchers (mpirun-local.sh, mpirun-hosts.sh): runs an mpirun command line so that
# a stop reaches the ranks as a clean one.
#
#   run_stoppable NAME COMMAND…   (does not return: exits with the job's status)
#
# Ctrl-C, SIGTERM or a hang-up (the terminal closed) asks the ranks to stop through SIGUSR1, which
# mpirun forwards without aborting the job (they finish the step, checkpoint, exit 0). A second one
# aborts at once. mpirun runs in its own session, so the terminal's Ctrl-C (and its hang-up) reaches
# only this script. Handed to mpirun itself (exec), SIGTERM or SIGINT would end the job as aborted
# and kill the ranks a second later, checkpoint or not; `vae-dist supervise` stops a launch script
# with SIGTERM.
run_stoppable() {
  local name=$1
  shift
  setsid "$@" &
  job=$!
  stops=0
  stopper=$name
  trap stop_job INT TERM HUP
  local status=0
  while true; do
    wait "$job" && status=0 || status=$?
    # wait returns early (> 128) when a trapped signal arrives; the job is still running then.
    kill -0 "$job" 2>/dev/null || break
  done
  exit "$status"
}

stop_job() {
  stops=$((stops + 1))
  if ((stops == 1)); then
    kill -USR1 "$job" 2>/dev/null || true
    # After a hang-up the terminal may refuse the line; that must not end this script.
    echo "$stopper: stopping after the current step (again to abort)" >&2 || true
  else
    kill -TERM "$job" 2>/dev/null || true
  fi
}
