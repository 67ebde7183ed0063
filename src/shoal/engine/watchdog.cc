#include "shoal/engine/watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <zmq.hpp>

#include "shoal/common/log.h"
#include "shoal/engine/exit_reason.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/message.h"
#include "shoal/wire/signer.h"

namespace shoal::engine {
namespace {

using Json = nlohmann::json;

// Launchers signal the pid they started (the watchdog); user code on the engine may have
// handlers for any of these (IPython Parallel's tests use SIGUSR1), so all are passed on.
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
                                     SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH};

RegisteredEngine FromJson(const Json& j) {
  RegisteredEngine e;
  e.id = j.value("id", -1);
  e.uuid = j.value("uuid", "");
  e.registration_url = j.value("registration", "");
  e.key = j.value("key", "");
  e.signature_scheme = j.value("signature_scheme", "hmac-sha256");
  e.curve_serverkey = j.value("curve_serverkey", "");
  e.curve_secretkey = j.value("curve_secretkey", "");
  e.curve_publickey = j.value("curve_publickey", "");
  e.username = j.value("username", "username");
  return e;
}

// The parent's life after fork: never returns.
[[noreturn]] void RunParent(pid_t child, int pipe_fd, const sigset_t& forwarded,
                            std::optional<uint64_t> oom_baseline) {
  log::SetName("shoal-engine-watchdog");
  int sfd = signalfd(-1, &forwarded, SFD_CLOEXEC);
  RegisteredEngine engine;
  bool registered = false, shutdown_requested = false, signalled = false;
  std::string buffer;
  int status = 0;
  for (;;) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {pipe_fd, POLLIN, 0}};
    int nfds = pipe_fd >= 0 ? 2 : 1;
    if (poll(fds, nfds, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          pid_t r = waitpid(child, &status, WNOHANG);
          if (r == child) break;
        } else {
          int sig = static_cast<int>(si.ssi_signo);
          signalled =
              signalled || sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
          kill(child, static_cast<int>(si.ssi_signo));
        }
      }
    }
    if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP))) {
      char chunk[4096];
      ssize_t n = read(pipe_fd, chunk, sizeof chunk);
      if (n <= 0) {
        close(pipe_fd);
        pipe_fd = -1;  // the child closed its end; keep waiting for its exit
      } else {
        buffer.append(chunk, static_cast<size_t>(n));
        size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
          Json j = Json::parse(buffer.substr(0, nl), nullptr, false);
          buffer.erase(0, nl + 1);
          if (!j.is_object()) continue;
          std::string event = j.value("event", "");
          if (event == "registered") {
            engine = FromJson(j);
            registered = true;
          } else if (event == "shutdown") {
            shutdown_requested = true;
          }
        }
      }
    }
  }
  bool oom = false;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
    // The kernel counts OOM kills per cgroup; a kill since we started is ours to suspect.
    auto after = ReadOomKillCount();
    oom = oom_baseline && after && *after > *oom_baseline;
  }
  std::string reason = DescribeExit(status, oom);
  if (registered && !shutdown_requested) {
    if (signalled) {
      reason = "stopped by a signal to its watchdog (" + reason + ")";
      SHOAL_LOG(Info) << "engine " << engine.id << " " << reason;
    } else {
      SHOAL_LOG(Warn) << "engine " << engine.id << " " << reason << "; telling the controller";
    }
    Status st = SendUnregistration(engine, reason);
    if (!st.ok()) SHOAL_LOG(Error) << "could not report the engine's death: " << st.message();
  } else if (!registered && !signalled && ExitCodeFor(status) != 0) {
    SHOAL_LOG(Error) << "engine " << reason << " before registering";
  }
  // A watchdog told to stop reports success, as `ipengine` does on SIGTERM.
  _exit(signalled && WIFSIGNALED(status) ? 0 : ExitCodeFor(status));
}

}  // namespace

void WatchdogPipe::WriteLine(const std::string& line) {
  if (fd_ < 0) return;
  std::string text = line + "\n";
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void WatchdogPipe::ReportRegistered(const RegisteredEngine& e) {
  WriteLine(Json{{"event", "registered"},
                 {"id", e.id},
                 {"uuid", e.uuid},
                 {"registration", e.registration_url},
                 {"key", e.key},
                 {"signature_scheme", e.signature_scheme},
                 {"curve_serverkey", e.curve_serverkey},
                 {"curve_secretkey", e.curve_secretkey},
                 {"curve_publickey", e.curve_publickey},
                 {"username", e.username}}
                .dump());
}

void WatchdogPipe::ReportShutdown() { WriteLine(Json{{"event", "shutdown"}}.dump()); }

Result<WatchdogPipe> StartWatchdog() {
  std::optional<uint64_t> oom_baseline = ReadOomKillCount();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + strerror(errno));
  sigset_t forwarded, old;
  sigemptyset(&forwarded);
  sigaddset(&forwarded, SIGCHLD);
  for (int s : kForwardedSignals) sigaddset(&forwarded, s);
  // Block before forking so no signal slips between fork and the parent's signalfd.
  sigprocmask(SIG_BLOCK, &forwarded, &old);
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    return Status::Internal(std::string("fork: ") + strerror(errno));
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the watchdog died before prctl took effect
    // Our own process group: a terminal's Ctrl-C reaches the watchdog, which forwards it
    // once, instead of reaching both.
    setpgid(0, 0);
    return WatchdogPipe(fds[1]);
  }
  close(fds[1]);
  RunParent(child, fds[0], forwarded, oom_baseline);
}

Status SendUnregistration(const RegisteredEngine& e, const std::string& reason, int linger_ms) {
  try {
    auto signer = wire::Signer::Create(e.key, e.signature_scheme);
    if (!signer.ok()) return signer.status();
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, linger_ms);
    if (!e.curve_serverkey.empty()) {
      s.set(zmq::sockopt::curve_serverkey, e.curve_serverkey);
      s.set(zmq::sockopt::curve_secretkey, e.curve_secretkey);
      s.set(zmq::sockopt::curve_publickey, e.curve_publickey);
    }
    s.connect(e.registration_url);
    Json content = {{"id", e.id}, {"reason", reason}};
    Json header = wire::MakeHeader("unregistration_request", e.uuid, e.username);
    wire::Frames frames =
        wire::Encode({}, header, Json::object(), Json::object(), content, **signer);
    for (size_t i = 0; i < frames.size(); ++i)
      s.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    s.close();
    ctx.close();  // waits up to the linger for the message to leave
    return Status::Ok();
  } catch (const zmq::error_t& err) {
    return Status::Unavailable(std::string("zmq: ") + err.what());
  }
}

}  // namespace shoal::engine
