# Sourced by the launchers (mpirun-local.sh, mpirun-hosts.sh, slurm.sbatch): runs a job's command
# line (mpirun, srun) so that a stop reaches the ranks as a clean one.
#
#   run_stoppable NAME COMMAND…   (does not return: exits with the job's status)
#
# Ctrl-C, SIGTERM, a hang-up (the terminal closed) or SIGUSR1 (Slurm's --signal=B:USR1) asks the
# ranks to stop through SIGUSR1, which mpirun and srun forward without aborting the job (they finish
# the step, checkpoint, exit 0). A second one aborts at once. The job runs in its own session, so the
# terminal's Ctrl-C (and its hang-up) reaches only this script. Handed to mpirun itself (exec),
# SIGTERM or SIGINT would end the job as aborted and kill the ranks a second later, checkpoint or
# not; `vae-dist supervise` stops a launch script with SIGTERM.
run_stoppable() {
  stopper=$1
  shift
  stops=0
  job=""
  # Trapped before the job starts: a signal in between must not end this script and leave the job.
  trap stop_job INT TERM HUP USR1
  setsid "$@" &
  job=$!
  # wait returns early (> 128) when a trapped signal arrives; the job is still running then.
  while kill -0 "$job" 2>/dev/null; do
    wait "$job" || true
  done
  # The job's own status (bash keeps it), also when it ended just as a signal interrupted the wait.
  local status=0
  wait "$job" || status=$?
  exit "$status"
}

stop_job() {
  stops=$((stops + 1))
  # A signal between the start and job=$!: $! already names the job once it was started.
  [[ -n "$job" ]] || job=${!-}
  [[ -n "$job" ]] || exit 130  # nothing started yet
  if ((stops == 1)); then
    kill -USR1 "$job" 2>/dev/null || true
    # After a hang-up the terminal may refuse the line; that must not end this script.
    echo "$stopper: stopping after the current step (again to abort)" >&2 || true
  else
    kill -TERM "$job" 2>/dev/null || true
  fi
}
