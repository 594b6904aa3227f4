// Stopping a job on request (SIGTERM, SIGINT, SIGUSR1) without losing work: Slurm sends
// SIGTERM ahead of a preemption or the time limit, and a user presses Ctrl-C.
//
// The controller (rank 0, or the only process) turns the first signal into a flag that
// its loop reads between steps: it finishes the step in progress, writes a checkpoint,
// shuts the workers down and exits 0. A watchdog thread bounds that: when it takes longer
// than the grace (trainer.shutdown_grace_s), or when a second signal arrives, the process
// ends at once, non-zero. A checkpoint is written under a .tmp name and renamed only when
// complete (checkpoint.h), so ending mid-write leaves no half-written checkpoint that
// trainer.resume=auto would pick up.
//
// A worker rank ignores its first signal: srun (and Slurm's scancel without --batch)
// signals every rank, and a trainer rank that left would take its FSDP shard of the
// checkpoint with it. It ends when the controller's Shutdown call arrives, or, if that
// never comes, when its own (longer) grace runs out or a second signal arrives.
//
// SIGUSR1 counts as a stop request because mpirun turns a SIGTERM of its own into a kill
// of the whole job about two seconds later, while it forwards SIGUSR1 to every rank at once
// (deploy/slurm/hone.sbatch relies on this).
#pragma once

#include <string>

namespace hone {

enum class StopRole {
  kController,  // first signal: StopRequested(); the loop saves and returns
  kWorker,      // first signal: noted; the process keeps serving until Shutdown
};

// Installs the handlers for SIGTERM, SIGINT and SIGUSR1 and starts the watchdog thread.
// `grace_s` counts from the first signal; <= 0 means no limit. `who` names the process in
// the lines printed when a signal arrives ("hone train", "hone worker rank 3"). Call once
// per process, from the main thread, before the work starts; later calls do nothing.
void InstallStopHandlers(StopRole role, double grace_s, const std::string& who);

// True once the first stop signal has arrived (any thread may ask).
bool StopRequested();

// The first stop signal's name ("SIGTERM", "SIGINT", "SIGUSR1"); "" before one arrived.
const char* StopSignalName();

// The line a loop prints after it saved on a stop request, naming the checkpoint:
// "<who>: stopped by SIGTERM after step N; checkpoint in DIR; resume with trainer.resume=auto".
std::string StoppedLine(const std::string& who, long long step, const std::string& checkpoint_dir,
                        bool resumable = true);

}  // namespace hone
