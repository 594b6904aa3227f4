#include "workers/controller/shutdown.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"

namespace hone {
namespace {

// Everything the handler touches is a lock-free atomic or a plain value written before the
// handlers were installed: a handler may run on any thread (gRPC's, torch's), at any point.
std::atomic<int> g_first_signal{0};
std::atomic<int> g_signals{0};
std::atomic<bool> g_installed{false};
int g_pipe[2] = {-1, -1};  // the handler wakes the watchdog through it
char g_who[128] = "hone";
StopRole g_role = StopRole::kController;

// write(2) of a NUL-terminated string: async-signal-safe, unlike stdio.
void WriteStderr(const char* text) {
  size_t n = 0;
  while (text[n] != '\0') ++n;
  while (n > 0) {
    const ssize_t written = write(STDERR_FILENO, text, n);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text += written;
    n -= static_cast<size_t>(written);
  }
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

void OnStopSignal(int sig) {
  const int saved_errno = errno;
  if (g_signals.fetch_add(1) == 0) {
    g_first_signal.store(sig);
    const char byte = 1;
    (void)!write(g_pipe[1], &byte, 1);
  } else {
    // The user (or Slurm) insists: end now. A checkpoint being written stays under its
    // .tmp name, which resume ignores.
    WriteStderr(g_who);
    WriteStderr(": second stop signal (");
    WriteStderr(SignalName(sig));
    WriteStderr("): exiting now without saving\n");
    _exit(128 + sig);
  }
  errno = saved_errno;
}

// Waits for the first signal, says what happens next, then ends the process when the
// grace runs out. It never returns once a signal arrived: a normal exit simply ends it.
void Watchdog(double grace_s) {
  char byte;
  while (true) {
    const ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return;
  }
  const int sig = g_first_signal.load();
  const std::string limit = grace_s > 0 ? absl::StrFormat(" (at most %g s;", grace_s) : " (";
  const std::string line =
      g_role == StopRole::kController
          ? absl::StrFormat("%s: got %s: finishing the step in progress, then saving a checkpoint%s a second "
                            "signal ends the process at once)\n",
                            g_who, SignalName(sig), limit)
          : absl::StrFormat("%s: got %s: waiting for the controller to save and shut the job down%s a second "
                            "signal ends the process at once)\n",
                            g_who, SignalName(sig), limit);
  WriteStderr(line.c_str());
  if (grace_s <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd none{-1, 0, 0};  // nothing to watch: poll is an interruptible sleep here
    poll(&none, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
  }
  const std::string timeout =
      absl::StrFormat("%s: did not stop within %g s of %s (trainer.shutdown_grace_s): exiting now; the last complete "
                      "checkpoint stays as it was\n",
                      g_who, grace_s, SignalName(sig));
  WriteStderr(timeout.c_str());
  _exit(128 + sig);
}

}  // namespace

void InstallStopHandlers(StopRole role, double grace_s, const std::string& who) {
  if (g_installed.exchange(true)) return;
  g_role = role;
  std::snprintf(g_who, sizeof(g_who), "%s", who.c_str());
  if (pipe(g_pipe) != 0) {
    std::fprintf(stderr, "%s: warning: cannot create the stop pipe; SIGTERM keeps its default action\n", g_who);
    return;
  }
  fcntl(g_pipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(g_pipe[1], F_SETFD, FD_CLOEXEC);
  std::thread(Watchdog, grace_s).detach();
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking calls elsewhere carry on; the loop polls the flag
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &action, nullptr);
}

bool StopRequested() { return g_first_signal.load() != 0; }

const char* StopSignalName() {
  const int sig = g_first_signal.load();
  return sig == 0 ? "" : SignalName(sig);
}

std::string StoppedLine(const std::string& who, long long step, const std::string& checkpoint_dir, bool resumable) {
  if (checkpoint_dir.empty()) {
    return absl::StrFormat("%s: stopped by %s before step %d completed; nothing to save (no checkpoint yet)", who,
                           StopSignalName(), step + 1);
  }
  return absl::StrFormat("%s: stopped by %s after step %d; checkpoint in %s%s", who, StopSignalName(), step,
                         checkpoint_dir, resumable ? "; resume with trainer.resume=auto" : "");
}

}  // namespace hone
