// controller_driver: a synthetic, Python-free load generator for shoal-controller.
//
// It starts the controller itself (fork/exec, remembered by PID, stopped with SIGTERM and
// then SIGKILL), reads the connection files from a private temporary profile directory and
// speaks IPython Parallel 7.1's wire protocol directly with cppzmq + OpenSSL HMAC:
//
//   register  N fake engines (default 1000). Each has a registration DEALER (identity =
//             its uuid) that sends a signed registration_request, then, once the reply
//             arrives, a heartbeat SUB (hb_ping) + DEALER (identity uuid, hb_pong) that
//             echoes every ping, and a shell ROUTER (identity uuid) connected to mux, task
//             and broadcast[id % len]. Measures the time until a client's
//             connection_request lists all N engines, the controller CPU spent on it, and
//             the controller's CPU while N engines just heartbeat.
//   tasks     K fake engines (default 4) that answer every apply_request at once with a
//             signed apply_reply, and C fake clients (DEALERs, default 1) that pump M no-op
//             apply_requests (default 200000) with a window of W outstanding requests
//             through the task channel (load balanced) and through mux (direct). Measures
//             tasks/s and the controller's CPU per routed task from /proc/<pid>/stat
//             (utime+stime, all threads), plus a window-1 round trip. --realistic makes
//             the engines also publish iopub status busy/idle around every request (two
//             more messages per task through the iopub relay) and the client subscribe.
//
// Each measurement runs once with --nodb and once with the default in-memory store.
// It measures and prints; it never asserts a time. Everything binds/connects on 127.0.0.1.
//
//   controller_driver [--shoal-controller PATH] [--quick] [--realistic] [...]
//   controller_driver --help
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <zmq.hpp>

#ifndef SHOAL_SOURCE_DIR
#define SHOAL_SOURCE_DIR "."
#endif

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::atomic<bool> g_interrupted{false};

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

void CheckInterrupted() {
  if (g_interrupted.load(std::memory_order_relaxed)) throw Interrupted();
}

double Now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

void Log(const std::string& s) {
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  std::cout << buf << " " << s << std::endl;
}

template <typename... A>
std::string Fmt(const char* f, A... a) {
  char buf[1024];
  snprintf(buf, sizeof buf, f, a...);
  return buf;
}

// ------------------------------------------------------------------------- wire helpers

constexpr std::string_view kDelim = "<IDS|MSG>";

std::string RandomHex(std::mt19937_64& rng, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n, '0');
  for (auto& c : s) c = d[rng() & 15];
  return s;
}

std::mt19937_64& Rng() {
  static std::mt19937_64 rng{std::random_device{}() ^ (uint64_t(getpid()) << 32)};
  return rng;
}

// jupyter_client's new_id(): 8hex-24hex.
std::string NewId() { return RandomHex(Rng(), 8) + "-" + RandomHex(Rng(), 24); }

// ISO-8601 UTC with microseconds, as Python's json_default writes it.
class IsoClock {
 public:
  void Append(std::string& out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec_) {
      sec_ = ts.tv_sec;
      struct tm tm;
      gmtime_r(&sec_, &tm);
      char buf[32];
      strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      prefix_ = buf;
    }
    char us[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', 0};
    long v = ts.tv_nsec / 1000;
    for (int i = 6; i >= 1; --i, v /= 10) us[i] = static_cast<char>('0' + v % 10);
    out += prefix_;
    out.append(us, 8);
  }

 private:
  time_t sec_ = -1;
  std::string prefix_;
};

IsoClock g_iso;

// HMAC over the four signed frames, with precomputed inner/outer digest states.
class Hmac {
 public:
  Hmac(const std::string& key, const std::string& scheme) : enabled_(!key.empty()) {
    if (!enabled_) return;
    if (scheme.rfind("hmac-", 0) != 0) throw std::runtime_error("bad signature scheme " + scheme);
    md_ = EVP_get_digestbyname(scheme.substr(5).c_str());
    if (!md_) throw std::runtime_error("unknown digest in " + scheme);
    size_t block = EVP_MD_block_size(md_);
    std::string k = key;
    if (k.size() > block) {
      unsigned char h[EVP_MAX_MD_SIZE];
      unsigned int n = 0;
      EVP_Digest(k.data(), k.size(), h, &n, md_, nullptr);
      k.assign(reinterpret_cast<char*>(h), n);
    }
    k.resize(block, '\0');
    std::string ipad(block, 0), opad(block, 0);
    for (size_t i = 0; i < block; ++i) {
      ipad[i] = static_cast<char>(k[i] ^ 0x36);
      opad[i] = static_cast<char>(k[i] ^ 0x5c);
    }
    inner_ = EVP_MD_CTX_new();
    outer_ = EVP_MD_CTX_new();
    work_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(inner_, md_, nullptr);
    EVP_DigestUpdate(inner_, ipad.data(), ipad.size());
    EVP_DigestInit_ex(outer_, md_, nullptr);
    EVP_DigestUpdate(outer_, opad.data(), opad.size());
  }
  ~Hmac() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
    EVP_MD_CTX_free(work_);
  }
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  bool enabled() const { return enabled_; }

  std::string Sign(std::string_view h, std::string_view p, std::string_view m,
                   std::string_view c) {
    if (!enabled_) return {};
    unsigned char ih[EVP_MAX_MD_SIZE], oh[EVP_MAX_MD_SIZE];
    unsigned int in = 0, on = 0;
    EVP_MD_CTX_copy_ex(work_, inner_);
    EVP_DigestUpdate(work_, h.data(), h.size());
    EVP_DigestUpdate(work_, p.data(), p.size());
    EVP_DigestUpdate(work_, m.data(), m.size());
    EVP_DigestUpdate(work_, c.data(), c.size());
    EVP_DigestFinal_ex(work_, ih, &in);
    EVP_MD_CTX_copy_ex(work_, outer_);
    EVP_DigestUpdate(work_, ih, in);
    EVP_DigestFinal_ex(work_, oh, &on);
    static const char* d = "0123456789abcdef";
    std::string s(2 * on, '0');
    for (unsigned i = 0; i < on; ++i) {
      s[2 * i] = d[oh[i] >> 4];
      s[2 * i + 1] = d[oh[i] & 15];
    }
    return s;
  }

 private:
  bool enabled_;
  const EVP_MD* md_ = nullptr;
  EVP_MD_CTX* inner_ = nullptr;
  EVP_MD_CTX* outer_ = nullptr;
  EVP_MD_CTX* work_ = nullptr;
};

std::string_view View(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

using Frames = std::vector<zmq::message_t>;

// Receives one multipart message without blocking; false when nothing is queued.
bool RecvMulti(zmq::socket_t& s, Frames& out) {
  out.clear();
  zmq::message_t m;
  if (!s.recv(m, zmq::recv_flags::dontwait)) return false;
  bool more = m.more();
  out.push_back(std::move(m));
  while (more) {
    zmq::message_t n;
    (void)s.recv(n, zmq::recv_flags::none);  // the rest of a multipart is already here
    more = n.more();
    out.push_back(std::move(n));
  }
  return true;
}

void SendMulti(zmq::socket_t& s, Frames& f) {
  for (size_t i = 0; i < f.size(); ++i)
    s.send(f[i], i + 1 < f.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

zmq::message_t Msg(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

std::optional<size_t> FindDelim(const Frames& f) {
  for (size_t i = 0; i < f.size(); ++i)
    if (View(f[i]) == kDelim) return i;
  return std::nullopt;
}

// A header JSON object in the shape jupyter_client writes.
void BuildHeader(std::string& out, std::string_view msg_id, std::string_view msg_type,
                 std::string_view session) {
  out.clear();
  out += R"({"msg_id": ")";
  out += msg_id;
  out += R"(", "msg_type": ")";
  out += msg_type;
  out += R"(", "username": "username", "session": ")";
  out += session;
  out += R"(", "date": ")";
  g_iso.Append(out);
  out += R"(", "version": "5.3"})";
}

// The string value of "key" in a small JSON object, without a full parse.
std::string_view JsonStringField(std::string_view j, std::string_view key) {
  std::string pat = "\"" + std::string(key) + "\"";
  size_t p = j.find(pat);
  if (p == std::string_view::npos) return {};
  p = j.find(':', p + pat.size());
  if (p == std::string_view::npos) return {};
  p = j.find('"', p + 1);
  if (p == std::string_view::npos) return {};
  size_t e = j.find('"', p + 1);
  if (e == std::string_view::npos) return {};
  return j.substr(p + 1, e - p - 1);
}

// Builds and signs a message from a session, appending it to `f`.
struct Sender {
  std::string session;
  std::string msg_prefix;  // "<session>_<pid>_"
  uint64_t counter = 0;
  std::string header, msg_id;

  explicit Sender(std::string s) : session(std::move(s)) {
    msg_prefix = session + "_" + std::to_string(getpid()) + "_";
  }
  // Returns the counter used for the msg_id.
  uint64_t Build(Frames& f, Hmac& hmac, std::string_view msg_type, std::string_view parent,
                 std::string_view metadata, std::string_view content) {
    uint64_t n = counter++;
    msg_id = msg_prefix;
    msg_id += std::to_string(n);
    BuildHeader(header, msg_id, msg_type, session);
    f.push_back(Msg(kDelim));
    f.push_back(Msg(hmac.Sign(header, parent, metadata, content)));
    f.push_back(Msg(header));
    f.push_back(Msg(parent));
    f.push_back(Msg(metadata));
    f.push_back(Msg(content));
    return n;
  }
};

bool CheckSig(Hmac& hmac, const Frames& f, size_t d) {
  if (!hmac.enabled()) return true;
  if (f.size() < d + 6) return false;
  std::string s = hmac.Sign(View(f[d + 2]), View(f[d + 3]), View(f[d + 4]), View(f[d + 5]));
  return View(f[d + 1]) == s;
}

// ------------------------------------------------------------------------ /proc helpers

const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));

struct ProcStat {
  bool ok = false;
  int ppid = 0;
  double cpu_s = 0;  // utime + stime, all threads
};

ProcStat ReadProcStat(int pid) {
  ProcStat r;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return r;
  size_t rp = line.rfind(')');
  if (rp == std::string::npos) return r;
  std::istringstream is(line.substr(rp + 2));
  std::string state;
  long ppid = 0;
  is >> state >> ppid;
  unsigned long long v[12] = {};
  // after ppid: pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  for (int i = 0; i < 11; ++i) is >> v[i];
  unsigned long long stime = 0;
  is >> stime;
  r.ok = static_cast<bool>(is);
  r.ppid = static_cast<int>(ppid);
  r.cpu_s = static_cast<double>(v[10] + stime) / kTicks;
  return r;
}

// CPU seconds of `root` and every live descendant (the stock controller forks children).
double TreeCpu(int root, bool include_children, int* nprocs = nullptr) {
  if (!include_children) {
    if (nprocs) *nprocs = 1;
    return ReadProcStat(root).cpu_s;
  }
  std::vector<std::pair<int, ProcStat>> all;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    ProcStat s = ReadProcStat(std::stoi(name));
    if (s.ok) all.emplace_back(std::stoi(name), s);
  }
  std::vector<int> tree{root};
  double total = 0;
  for (size_t i = 0; i < tree.size(); ++i)
    for (const auto& [pid, s] : all)
      if (s.ppid == tree[i]) tree.push_back(pid);
  for (int pid : tree)
    for (const auto& [p, s] : all)
      if (p == pid) total += s.cpu_s;
  if (nprocs) *nprocs = static_cast<int>(tree.size());
  return total;
}

long RssKib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Busy CPU seconds of the whole machine (all cores), from /proc/stat.
double SysBusy() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long u = 0, n = 0, s = 0, idle = 0, iow = 0, irq = 0, sirq = 0, steal = 0;
  f >> cpu >> u >> n >> s >> idle >> iow >> irq >> sirq >> steal;
  return static_cast<double>(u + n + s + irq + sirq + steal) / kTicks;
}

double SelfCpu() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

Json LoadAvg() {
  double la[3] = {0, 0, 0};
  getloadavg(la, 3);
  return Json::array({std::round(la[0] * 100) / 100, std::round(la[1] * 100) / 100,
                      std::round(la[2] * 100) / 100});
}

// ---------------------------------------------------------------------- options

struct Options {
  std::vector<std::string> controller_cmd;  // argv[0..] of the controller
  bool tree_cpu = false;                    // count the controller's children too (stock)
  std::string system = "shoal";
  std::vector<std::string> modes = {"register", "tasks"};
  std::vector<std::string> dbs = {"nodb", "memory"};
  std::vector<std::string> channels = {"task", "mux"};
  int reg_engines = 1000;
  int reg_ping_ms = 100;
  std::vector<int> reg_pings;  // extra --ping values to also measure registration with
  double idle_seconds = 3.0;
  int task_engines = 4;
  int task_ping_ms = 0;  // 0 = the controller's default
  long tasks = 200000;
  int window = 1000;
  int clients = 1;
  long rtt_calls = 5000;
  int rounds = 1;
  std::optional<int> hwm;
  bool realistic = false;
  bool verify = true;
  int payload = 400;
  double timeout = 300;
  double quiet_threshold = 0.35;
  double quiet_wait = 10;
  std::vector<std::string> extra_args;
  std::string json_out;
  std::string log_level = "WARN";
  bool keep = false;
};

// ----------------------------------------------------------------- the controller

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

struct ConnInfo {
  std::string iface, key, scheme;
  Json j;
  std::string Ep(const char* name) const { return Ep(j.at(name).get<int>()); }
  std::string Ep(int port) const { return iface + ":" + std::to_string(port); }
};

ConnInfo ParseConn(const Json& j) {
  ConnInfo c;
  c.j = j;
  c.iface = j.at("interface").get<std::string>();
  c.key = j.value("key", "");
  c.scheme = j.value("signature_scheme", "hmac-sha256");
  if (c.iface.rfind("tcp://", 0) != 0) throw std::runtime_error("only tcp:// interfaces supported");
  return c;
}

class ControllerProcess {
 public:
  ControllerProcess(const Options& o, std::vector<std::string> args) : tree_(o.tree_cpu), keep_(o.keep) {
    char tmpl[] = "/tmp/shoal-driver-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::vector<std::string> argv = o.controller_cmd;
    argv.push_back("--profile-dir=" + dir_);
    argv.push_back("--ip=127.0.0.1");
    argv.push_back("--log-level=" + o.log_level);
    for (auto& a : args) argv.push_back(a);
    for (auto& a : o.extra_args) argv.push_back(a);
    cmd_ = argv;
    log_ = dir_ + "/controller.log";
    t_start_ = Now();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  ~ControllerProcess() {
    try {
      Stop();
    } catch (...) {
    }
    if (!keep_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Waits for both connection files to exist and parse. Returns seconds since fork.
  double WaitReady(double timeout) {
    std::string sec = dir_ + "/security/";
    double deadline = Now() + timeout;
    while (true) {
      CheckInterrupted();
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("controller exited early (status " + std::to_string(st) +
                                 "); log:\n" + LogTail());
      }
      try {
        std::ifstream cf(sec + "ipcontroller-client.json"), ef(sec + "ipcontroller-engine.json");
        if (cf && ef) {
          Json cj = Json::parse(cf), ej = Json::parse(ef);
          client = ParseConn(cj);
          engine = ParseConn(ej);
          return Now() - t_start_;
        }
      } catch (const Json::exception&) {
        // being written
      }
      if (Now() > deadline) throw std::runtime_error("controller wrote no connection files; log:\n" + LogTail());
      usleep(10000);
    }
  }

  double Cpu(int* nprocs = nullptr) const { return TreeCpu(pid_, tree_, nprocs); }
  long Rss() const { return RssKib(pid_); }
  int pid() const { return pid_; }
  const std::vector<std::string>& cmd() const { return cmd_; }

  // SIGTERM, wait up to 5 s, then SIGKILL. Returns seconds to exit (negative if killed).
  double Stop() {
    if (pid_ <= 0) return 0;
    double t0 = Now();
    // the stock controller's children: signal them too (they are ours, by PID)
    std::vector<int> kids;
    if (tree_) {
      for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        if (ReadProcStat(std::stoi(name)).ppid == pid_) kids.push_back(std::stoi(name));
      }
    }
    kill(pid_, SIGTERM);
    double exit_s = -1;
    int st = 0;
    while (Now() - t0 < 5.0) {
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exit_s = Now() - t0;
        break;
      }
      usleep(5000);
    }
    if (exit_s < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
    for (int k : kids) {  // reparented to init by now if still alive; only these PIDs
      if (kill(k, 0) == 0) {
        kill(k, SIGTERM);
        for (int i = 0; i < 100 && kill(k, 0) == 0; ++i) usleep(20000);
        if (kill(k, 0) == 0) kill(k, SIGKILL);
      }
    }
    pid_ = -1;
    exit_status_ = st;
    return exit_s;
  }

  std::string LogTail(size_t lines = 25) const {
    std::ifstream f(log_);
    std::vector<std::string> all;
    std::string l;
    while (std::getline(f, l)) all.push_back(l);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
      out += "  | " + all[i] + "\n";
    return out;
  }
  size_t LogLines() const {
    std::ifstream f(log_);
    size_t n = 0;
    std::string l;
    while (std::getline(f, l)) ++n;
    return n;
  }

  ConnInfo client, engine;

 private:
  bool tree_, keep_;
  std::string dir_, log_;
  std::vector<std::string> cmd_;
  double t_start_ = 0;
  int pid_ = -1;
  int exit_status_ = 0;
};

// Waits (at most max_wait s) until processes other than ours and the controller use less
// than `threshold` cores over 0.5 s. Returns the last foreign load seen.
double WaitQuiet(const Options& o, const ControllerProcess& c) {
  double end = Now() + o.quiet_wait;
  while (true) {
    CheckInterrupted();
    double s0 = SysBusy(), c0 = c.Cpu(), m0 = SelfCpu(), t0 = Now();
    usleep(500000);
    double wall = Now() - t0;
    double foreign = std::max(0.0, ((SysBusy() - s0) - (c.Cpu() - c0) - (SelfCpu() - m0)) / wall);
    if (foreign < o.quiet_threshold || Now() >= end) return foreign;
  }
}

// A timed window: wall time, controller CPU, the driver's own CPU, foreign load.
struct Window {
  const ControllerProcess& c;
  double t0, s0, c0, m0;
  Json la0;
  explicit Window(const ControllerProcess& cp) : c(cp) {
    la0 = LoadAvg();
    s0 = SysBusy();
    m0 = SelfCpu();
    c0 = c.Cpu();
    t0 = Now();
  }
  Json Close(double tasks) {
    double wall = Now() - t0;
    int nprocs = 0;
    double ctrl = c.Cpu(&nprocs) - c0;
    double self = SelfCpu() - m0;
    double sys = SysBusy() - s0;
    Json r;
    r["wall_s"] = wall;
    r["ctrl_cpu_s"] = ctrl;
    r["ctrl_cores"] = ctrl / wall;
    r["ctrl_processes"] = nprocs;
    r["driver_cpu_s"] = self;
    r["foreign_cores"] = std::max(0.0, (sys - ctrl - self) / wall);
    r["loadavg_before"] = la0;
    r["loadavg_after"] = LoadAvg();
    if (tasks > 0) {
      r["tasks"] = tasks;
      r["tasks_per_s"] = tasks / wall;
      r["ctrl_cpu_us_per_task"] = ctrl / tasks * 1e6;
      r["driver_cpu_us_per_task"] = self / tasks * 1e6;
    }
    return r;
  }
};

// --------------------------------------------------------------------- fake engines

void SetCommon(zmq::socket_t& s) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
}

// One epoll set over the ZMQ_FD of every socket the driver reads, so a wakeup costs
// O(ready sockets) rather than O(all sockets) as zmq_poll does (1000 engines = 2000+
// sockets). ZMQ_FD only says "look at ZMQ_EVENTS"; a socket must be drained until EAGAIN
// (or re-checked), and any send on a socket we also read can consume its signal, so
// handlers Touch() their socket and Wait() re-checks touched sockets first.
class Reactor {
 public:
  enum Kind : uint64_t { kReg, kHb, kQuery, kNotif, kShell, kClient, kIopub };
  static uint64_t Tag(Kind k, size_t i) { return (static_cast<uint64_t>(k) << 32) | i; }
  static Kind KindOf(uint64_t tag) { return static_cast<Kind>(tag >> 32); }
  static size_t IndexOf(uint64_t tag) { return static_cast<size_t>(tag & 0xffffffffu); }

  Reactor() : ep_(epoll_create1(EPOLL_CLOEXEC)) {
    if (ep_ < 0) throw std::runtime_error("epoll_create1 failed");
  }
  ~Reactor() { close(ep_); }
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  void Add(zmq::socket_t& s, uint64_t tag) {
    int fd = s.get(zmq::sockopt::fd);
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0)
      throw std::runtime_error(std::string("epoll_ctl: ") + strerror(errno));
    socks_[tag] = &s;
    touched_.push_back(tag);
  }
  void Remove(uint64_t tag) {
    auto it = socks_.find(tag);
    if (it == socks_.end()) return;
    int fd = it->second->get(zmq::sockopt::fd);
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    socks_.erase(it);
  }
  void Touch(uint64_t tag) { touched_.push_back(tag); }

  // Tags of sockets with a message to read, waiting at most timeout_ms for one.
  void Wait(int timeout_ms, std::vector<uint64_t>& out) {
    out.clear();
    std::vector<uint64_t> t;
    t.swap(touched_);
    for (uint64_t tag : t) Check(tag, out);
    struct epoll_event evs[512];
    int n = epoll_wait(ep_, evs, 512, out.empty() ? timeout_ms : 0);
    for (int i = 0; i < n; ++i) Check(evs[i].data.u64, out);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

 private:
  void Check(uint64_t tag, std::vector<uint64_t>& out) {
    auto it = socks_.find(tag);
    if (it == socks_.end()) return;
    if (it->second->get(zmq::sockopt::events) & ZMQ_POLLIN) out.push_back(tag);
  }
  int ep_;
  std::unordered_map<uint64_t, zmq::socket_t*> socks_;
  std::vector<uint64_t> touched_;
};

struct FakeEngine {
  std::string uuid;
  int id = -1;
  bool replied = false;
  bool pinged = false;  // echoed at least one ping
  std::unique_ptr<zmq::socket_t> reg, shell, hb_sub, hb_dealer, iopub;
  std::unique_ptr<Sender> sender;
  std::string reply_meta_prefix;  // metadata JSON up to the "started" value
  std::string topic;
  std::string iopub_meta;
  uint64_t requests = 0;
};

struct FakeClient {
  std::unique_ptr<zmq::socket_t> sock;
  std::unique_ptr<Sender> sender;
  long quota = 0, sent = 0, received = 0;
  std::vector<uint8_t> state;   // per request index: 1 outstanding, 2 done
  std::vector<double> sent_at;  // when measuring round trips
};

// The hub's bookkeeping from a queue_reply: completed = finished on some engine,
// pending = still queued / assigned / unassigned.
struct HubStatus {
  bool ok = false;
  long completed = 0, pending = 0;
};

// Fake engines, fake clients and the client-side query/notification sockets, all served
// from one thread by one Reactor.
struct Driver {
  const Options& o;
  ControllerProcess& ctrl;
  zmq::context_t ctx;
  Hmac hmac;
  Reactor reactor;
  std::vector<std::unique_ptr<FakeEngine>> engines;
  std::unique_ptr<zmq::socket_t> query, notif, iosub;
  std::unique_ptr<Sender> query_sender;
  std::vector<FakeClient> clients;
  Frames in, out;
  std::string tmp;
  std::vector<uint64_t> ready;

  // counters
  uint64_t bad_sig = 0, protocol_errors = 0;
  std::string first_error;
  long total_replies = 0;  // apply replies received so far, all pumps
  size_t replied = 0, pinged = 0, notified = 0;
  uint64_t ping_msgs = 0;
  // the last query reply
  bool query_fresh = false;
  Json query_reply;
  // pump state
  bool record_rtt = false;
  std::vector<double> rtt_us;
  long received = 0, errors = 0, dup_or_unknown = 0, with_engine_prefix = 0, iopub_msgs = 0;
  std::string first_reply_error;
  double last_progress = 0;

  Driver(const Options& opts, ControllerProcess& c, int max_sockets)
      : o(opts), ctrl(c), ctx(1, max_sockets), hmac(c.engine.key, c.engine.scheme) {
    query = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    SetCommon(*query);
    query->connect(ctrl.client.Ep("registration"));
    reactor.Add(*query, Reactor::Tag(Reactor::kQuery, 0));
    notif = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
    SetCommon(*notif);
    notif->set(zmq::sockopt::subscribe, "");
    notif->connect(ctrl.client.Ep("notification"));
    reactor.Add(*notif, Reactor::Tag(Reactor::kNotif, 0));
    if (o.realistic) {
      iosub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
      SetCommon(*iosub);
      iosub->set(zmq::sockopt::subscribe, "");
      iosub->connect(ctrl.client.Ep("iopub"));
      reactor.Add(*iosub, Reactor::Tag(Reactor::kIopub, 0));
    }
    query_sender = std::make_unique<Sender>(NewId());
  }
  ~Driver() {
    clients.clear();
    engines.clear();
    query.reset();
    notif.reset();
    iosub.reset();
  }

  void Error(const std::string& what) {
    ++protocol_errors;
    if (first_error.empty()) first_error = what;
  }

  void SendQuery(std::string_view type, std::string_view content = "{}") {
    out.clear();
    query_fresh = false;
    query_sender->Build(out, hmac, type, "{}", "{}", content);
    SendMulti(*query, out);
    reactor.Touch(Reactor::Tag(Reactor::kQuery, 0));
  }

  // Serves every socket that is ready, waiting at most timeout_ms for one.
  void Service(int timeout_ms) {
    reactor.Wait(timeout_ms, ready);
    for (uint64_t tag : ready) {
      size_t i = Reactor::IndexOf(tag);
      bool more = false;
      switch (Reactor::KindOf(tag)) {
        case Reactor::kReg: more = OnReg(i); break;
        case Reactor::kHb: more = EchoPings(*engines[i]); break;
        case Reactor::kQuery: more = OnQueryReply(); break;
        case Reactor::kNotif: more = OnNotification(); break;
        case Reactor::kShell: more = ServeShell(*engines[i]); break;
        case Reactor::kClient: more = OnClientReplies(clients[i], i); break;
        case Reactor::kIopub: more = OnIopub(); break;
      }
      // re-check next time: messages left behind the cap, or a send that ate the signal
      if (more || Reactor::KindOf(tag) == Reactor::kShell) reactor.Touch(tag);
    }
  }

  // ---------------------------------------------------------------- registration

  void CreateEngines(int n) {
    for (int i = 0; i < n; ++i) {
      auto e = std::make_unique<FakeEngine>();
      e->uuid = NewId();
      e->sender = std::make_unique<Sender>(e->uuid);
      e->reg = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      SetCommon(*e->reg);
      e->reg->set(zmq::sockopt::routing_id, e->uuid);
      e->reg->connect(ctrl.engine.Ep("registration"));
      reactor.Add(*e->reg, Reactor::Tag(Reactor::kReg, engines.size()));
      engines.push_back(std::move(e));
    }
  }

  void SendRegistration(size_t i) {
    FakeEngine& e = *engines[i];
    out.clear();
    std::string content = R"({"uuid": ")" + e.uuid + "\"}";
    e.sender->Build(out, hmac, "registration_request", "{}", "{}", content);
    SendMulti(*e.reg, out);
    reactor.Touch(Reactor::Tag(Reactor::kReg, i));
  }

  bool OnReg(size_t idx) {
    FakeEngine& e = *engines[idx];
    while (RecvMulti(*e.reg, in)) {
      if (e.replied) continue;
      OnRegistrationReply(idx, in);
    }
    return false;
  }

  void OnRegistrationReply(size_t idx, Frames& f) {
    FakeEngine& e = *engines[idx];
    auto d = FindDelim(f);
    if (!d || f.size() < *d + 6) return Error("short registration_reply");
    if (!CheckSig(hmac, f, *d)) ++bad_sig;
    Json c = Json::parse(View(f[*d + 5]), nullptr, false);
    if (!c.is_object() || c.value("status", "") != "ok" || !c.contains("id"))
      return Error("registration refused: " + std::string(View(f[*d + 5])));
    e.id = c["id"].get<int>();
    e.replied = true;
    ++replied;
    const Json& ej = ctrl.engine.j;
    // as ipengine does: shell (mux, task, one broadcast leaf), then the heart
    e.shell = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
    SetCommon(*e.shell);
    e.shell->set(zmq::sockopt::routing_id, e.uuid);
    e.shell->connect(ctrl.engine.Ep("mux"));
    e.shell->connect(ctrl.engine.Ep("task"));
    const Json& bc = ej.at("broadcast");
    if (bc.is_array() && !bc.empty())
      e.shell->connect(ctrl.engine.Ep(bc[e.id % bc.size()].get<int>()));
    reactor.Add(*e.shell, Reactor::Tag(Reactor::kShell, idx));
    if (o.realistic) {
      e.iopub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pub);
      SetCommon(*e.iopub);
      e.iopub->connect(ctrl.engine.Ep("iopub"));
    }
    e.hb_sub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
    SetCommon(*e.hb_sub);
    e.hb_sub->set(zmq::sockopt::subscribe, "");
    e.hb_sub->connect(ctrl.engine.Ep("hb_ping"));
    e.hb_dealer = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    SetCommon(*e.hb_dealer);
    e.hb_dealer->set(zmq::sockopt::routing_id, e.uuid);
    e.hb_dealer->connect(ctrl.engine.Ep("hb_pong"));
    reactor.Add(*e.hb_sub, Reactor::Tag(Reactor::kHb, idx));
    e.topic = "engine." + std::to_string(e.id) + ".status";
    e.iopub_meta = R"({"engine": ")" + e.uuid + "\"}";
    e.reply_meta_prefix = R"({"dependencies_met": true, "engine": ")" + e.uuid +
                          R"(", "is_broadcast": false, "is_coalescing": false, )"
                          R"("original_msg_id": "", "status": "ok", "started": ")";
  }

  bool EchoPings(FakeEngine& e) {
    int k = 0;
    for (; k < 64 && RecvMulti(*e.hb_sub, in); ++k) {
      SendMulti(*e.hb_dealer, in);
      ++ping_msgs;
      if (!e.pinged) {
        e.pinged = true;
        ++pinged;
      }
    }
    return k == 64;
  }

  bool OnQueryReply() {
    while (RecvMulti(*query, in)) {
      auto d = FindDelim(in);
      if (!d || in.size() < *d + 6) {
        Error("short query reply");
        continue;
      }
      if (!CheckSig(hmac, in, *d)) ++bad_sig;
      query_reply = Json::parse(View(in[*d + 5]), nullptr, false);
      query_fresh = true;
    }
    return false;
  }

  bool OnNotification() {
    while (RecvMulti(*notif, in)) {
      auto d = FindDelim(in);
      if (!d || in.size() < *d + 6) continue;
      if (JsonStringField(View(in[*d + 2]), "msg_type") == "registration_notification") ++notified;
    }
    return false;
  }

  // Registers every engine and returns timing figures. Runs until a connection_request
  // lists all of them (or the timeout).
  Json RegisterAll(double timeout) {
    const size_t n = engines.size();
    Json r;
    bool query_out = false;
    double last_query = 0, t_replies = -1, t_pinged = -1, t_first_notified = -1, t_notified = -1,
           t_visible = -1;
    size_t last_seen = 0;

    Window w(ctrl);
    double t0 = w.t0;
    for (size_t i = 0; i < n; ++i) SendRegistration(i);
    double t_sent = Now();
    double deadline = t0 + timeout;
    while (t_visible < 0 && Now() < deadline) {
      CheckInterrupted();
      Service(10);
      double now = Now();
      if (t_replies < 0 && replied == n) t_replies = now - t0;
      if (t_pinged < 0 && pinged == n) t_pinged = now - t0;
      if (t_first_notified < 0 && notified > 0) t_first_notified = now - t0;
      if (t_notified < 0 && notified >= n) t_notified = now - t0;
      if (query_fresh) {
        query_fresh = false;
        query_out = false;
        if (query_reply.is_object() && query_reply.contains("engines")) {
          last_seen = query_reply["engines"].size();
          if (last_seen >= n) t_visible = now - t0;
        }
      }
      if (t_visible < 0 && !query_out && (notified >= n || now - last_query > 0.25)) {
        SendQuery("connection_request");
        query_out = true;
        last_query = now;
      }
    }
    Json win = w.Close(0);
    r["engines"] = n;
    r["send_registrations_s"] = t_sent - t0;
    r["all_registration_replies_s"] = t_replies;
    r["all_echoed_a_ping_s"] = t_pinged;
    r["first_registration_notification_s"] = t_first_notified;
    r["all_registration_notifications_s"] = t_notified;
    r["all_visible_in_connection_reply_s"] = t_visible;
    r["visible_at_end"] = last_seen;
    r["replies"] = replied;
    r["pinged"] = pinged;
    r["notifications"] = notified;
    r["window"] = win;
    return r;
  }

  // Keeps answering pings for `seconds`; returns the controller's CPU use meanwhile.
  Json Idle(double seconds) {
    Window w(ctrl);
    uint64_t p0 = ping_msgs;
    size_t n0 = notified;
    double end = w.t0 + seconds;
    while (Now() < end) {
      CheckInterrupted();
      Service(20);
    }
    Json r = w.Close(0);
    r["pings_echoed"] = ping_msgs - p0;
    r["notifications_meanwhile"] = notified - n0;
    return r;
  }

  // --------------------------------------------------------------------- tasks

  // Answers every request on an engine's shell socket with an apply_reply.
  bool ServeShell(FakeEngine& e) {
    int k = 0;
    for (; k < 256 && RecvMulti(*e.shell, in); ++k) {
      auto d = FindDelim(in);
      if (!d || in.size() < *d + 6) {
        Error("engine got a short message");
        continue;
      }
      if (o.verify && !CheckSig(hmac, in, *d)) ++bad_sig;
      ++e.requests;
      std::string_view req_header = View(in[*d + 2]);
      if (e.iopub) PublishStatus(e, req_header, "busy");
      // echo every prefix frame; parent = the request header bytes
      out.clear();
      for (size_t i = 0; i < *d; ++i) out.push_back(std::move(in[i]));
      tmp = e.reply_meta_prefix;
      g_iso.Append(tmp);
      tmp += "\"}";
      static const std::string content = R"({"status": "ok"})";
      e.sender->Build(out, hmac, "apply_reply", req_header, tmp, content);
      static const char none_pickle[] = "\x80\x04N.";
      out.push_back(zmq::message_t(none_pickle, 4));
      SendMulti(*e.shell, out);
      if (e.iopub) PublishStatus(e, req_header, "idle");
    }
    return k == 256;
  }

  void PublishStatus(FakeEngine& e, std::string_view parent, const char* state) {
    Frames f;
    f.push_back(Msg(e.topic));
    std::string content = std::string(R"({"execution_state": ")") + state + "\"}";
    e.sender->Build(f, hmac, "status", parent, e.iopub_meta, content);
    SendMulti(*e.iopub, f);
  }

  bool OnClientReplies(FakeClient& cl, size_t) {
    int m = 0;
    for (; m < 512 && RecvMulti(*cl.sock, in); ++m) {
      auto dl = FindDelim(in);
      if (!dl || in.size() < *dl + 6) {
        ++errors;
        continue;
      }
      if (*dl == 1) ++with_engine_prefix;
      if (o.verify && !CheckSig(hmac, in, *dl)) ++bad_sig;
      std::string_view parent_id = JsonStringField(View(in[*dl + 3]), "msg_id");
      std::string_view pre = cl.sender->msg_prefix;
      long idx = -1;
      if (parent_id.size() > pre.size() && parent_id.substr(0, pre.size()) == pre)
        idx = std::atol(std::string(parent_id.substr(pre.size())).c_str());
      if (idx < 0 || idx >= cl.quota || cl.state[idx] != 1) {
        ++dup_or_unknown;
        continue;
      }
      cl.state[idx] = 2;
      if (record_rtt) rtt_us.push_back((Now() - cl.sent_at[idx]) * 1e6);
      ++cl.received;
      ++received;
      last_progress = Now();
      std::string_view content = View(in[*dl + 5]);
      if (JsonStringField(content, "status") != "ok") {
        ++errors;
        if (first_reply_error.empty()) first_reply_error = std::string(content.substr(0, 300));
      }
    }
    return m == 512;
  }

  bool OnIopub() {
    int m = 0;
    for (; m < 512 && RecvMulti(*iosub, in); ++m) {
      ++iopub_msgs;
      last_progress = Now();
    }
    return m == 512;
  }

  HubStatus QueueStatus(double timeout) {
    SendQuery("queue_request", R"({"targets": null, "verbose": false})");
    double end = Now() + timeout;
    while (!query_fresh && Now() < end) {
      CheckInterrupted();
      Service(10);
    }
    HubStatus h;
    if (!query_fresh) return h;
    query_fresh = false;
    const Json& c = query_reply;
    if (!c.is_object() || c.value("status", "") != "ok") return h;
    h.ok = true;
    for (auto& [key, v] : c.items()) {
      if (key == "unassigned" && v.is_number()) h.pending += v.get<long>();
      if (!v.is_object()) continue;
      h.completed += v.value("completed", 0L);
      h.pending += v.value("queue", 0L) + v.value("tasks", 0L);
    }
    return h;
  }

  // Waits until the hub reports `expect` completed tasks and nothing pending, or until its
  // counts stop moving for 2 s with nothing pending, or `max_s`. Returns seconds waited, or
  // -1 when the hub gives no usable queue_reply, -2 when the counts settled short, -3 on
  // timeout.
  double WaitHub(long expect, double max_s, HubStatus& last) {
    double t0 = Now(), changed = t0;
    long prev = -1;
    while (Now() - t0 < max_s) {
      last = QueueStatus(5);
      if (!last.ok) return -1;
      if (last.completed >= expect && last.pending == 0) return Now() - t0;
      if (last.completed != prev) {
        prev = last.completed;
        changed = Now();
      } else if (last.pending == 0 && Now() - changed > 2.0) {
        return -2;
      }
      for (int k = 0; k < 5; ++k) Service(20);
    }
    return -3;
  }
};

struct PumpResult {
  Json j;
  std::vector<double> rtt_us;
};

// Pumps `total` apply_requests through `channel` ("task" or "mux") with `window` outstanding
// per client, engines answering at once. Measures the window when `timed`.
PumpResult Pump(Driver& d, const std::string& channel, long total, int window, int nclients,
                bool timed, bool record_rtt) {
  const Options& o = d.o;
  const bool task = channel == "task";
  d.clients.clear();
  d.clients.resize(nclients);
  for (int c = 0; c < nclients; ++c) {
    auto& cl = d.clients[c];
    cl.sock = std::make_unique<zmq::socket_t>(d.ctx, zmq::socket_type::dealer);
    SetCommon(*cl.sock);
    cl.sock->connect(d.ctrl.client.Ep(task ? "task" : "mux"));
    d.reactor.Add(*cl.sock, Reactor::Tag(Reactor::kClient, c));
    cl.sender = std::make_unique<Sender>(NewId());
    cl.quota = total / nclients + (c < total % nclients ? 1 : 0);
    cl.state.assign(cl.quota, 0);
    if (record_rtt) cl.sent_at.assign(cl.quota, 0);
  }
  d.record_rtt = record_rtt;
  d.rtt_us.clear();
  d.received = d.errors = d.dup_or_unknown = d.with_engine_prefix = d.iopub_msgs = 0;
  d.first_reply_error.clear();

  // what the load-balanced view sends for a no-op apply; buffers stand in for the pickles
  const std::string meta_task =
      R"({"after": [], "follow": [], "timeout": null, "targets": [], "retries": 0})";
  const std::string meta_mux = "{}";
  const std::string& meta = task ? meta_task : meta_mux;
  const std::string buf0(o.payload, 'f'), buf1(60, 'a');
  size_t rr = 0;  // mux round robin
  Frames out;

  HubStatus hub0;
  double foreign_before = 0;
  if (timed) {
    d.WaitHub(d.total_replies, 60, hub0);  // let the hub finish earlier work
    foreign_before = WaitQuiet(o, d.ctrl);
    hub0 = d.QueueStatus(5);
  }
  uint64_t engine_reqs0 = 0;
  for (auto& e : d.engines) engine_reqs0 += e->requests;
  std::optional<Window> w;
  if (timed) w.emplace(d.ctrl);
  double start = Now(), t_replies = -1;
  d.last_progress = start;
  const long iopub_expected = o.realistic ? 2 * total : 0;

  while (true) {
    CheckInterrupted();
    double now = Now();
    if (d.received == total && t_replies < 0) t_replies = now - start;
    if (d.received == total &&
        (d.iopub_msgs >= iopub_expected || now - d.last_progress > 3.0))
      break;
    if (now - d.last_progress > 30.0 || now - start > o.timeout) break;
    // refill the windows
    for (size_t c = 0; c < d.clients.size(); ++c) {
      auto& cl = d.clients[c];
      int batch = 0;
      while (cl.sent < cl.quota && cl.sent - cl.received < window && batch < 256) {
        out.clear();
        if (!task) out.push_back(Msg(d.engines[rr++ % d.engines.size()]->uuid));
        uint64_t idx = cl.sender->Build(out, d.hmac, "apply_request", "{}", meta, "{}");
        out.push_back(Msg(buf0));
        out.push_back(Msg(buf1));
        if (record_rtt) cl.sent_at[idx] = Now();
        cl.state[idx] = 1;
        SendMulti(*cl.sock, out);
        ++cl.sent;
        ++batch;
      }
      if (batch) d.reactor.Touch(Reactor::Tag(Reactor::kClient, c));
    }
    d.Service(5);
  }
  const long received = d.received;
  Json j = timed ? w->Close(static_cast<double>(received)) : Json::object();
  if (timed) {
    // The controller may still be working when the last reply arrives (the stock hub
    // processes its monitor copies well behind the relays). Keep serving heartbeats, ask the
    // hub (queue_request) until its bookkeeping shows every task of this window completed,
    // then until its CPU stops moving (< 2 ticks per 0.3 s); at most 65 s. The CPU per task
    // reported includes that tail; the in-window figure is kept too.
    double s0 = Now();
    double hub_done = -1;
    HubStatus h1;
    if (hub0.ok) hub_done = d.WaitHub(hub0.completed + received, 60, h1);
    j["hub_caught_up_after_s"] = hub_done >= 0 ? Json(hub_done) : Json(nullptr);
    j["hub_queue_status_ok"] = hub0.ok;
    if (hub0.ok) j["hub_completed_delta"] = h1.completed - hub0.completed;
    if (hub_done == -2) j["hub_note"] = "hub completed count settled below the replies received";
    double mark_t = Now(), mark_cpu = d.ctrl.Cpu(), settled_cpu = mark_cpu;
    while (Now() - s0 < 65.0) {
      CheckInterrupted();
      d.Service(20);
      if (Now() - mark_t >= 0.3) {
        double c = d.ctrl.Cpu();
        settled_cpu = mark_cpu;
        if (c - mark_cpu < 1.5 / kTicks) break;
        mark_cpu = settled_cpu = c;
        mark_t = Now();
      }
    }
    double tail_cpu = settled_cpu - w->c0;
    j["ctrl_cpu_s_in_window"] = j["ctrl_cpu_s"];
    j["ctrl_cpu_us_per_task_in_window"] = j["ctrl_cpu_us_per_task"];
    j["ctrl_cpu_s"] = tail_cpu;
    j["settle_s"] = Now() - s0;
    if (received > 0) j["ctrl_cpu_us_per_task"] = tail_cpu / received * 1e6;
  }
  if (timed && t_replies > 0) {
    // tasks/s up to the last reply; the CPU window above also covers the iopub tail
    j["tasks_per_s"] = received / t_replies;
    j["last_reply_s"] = t_replies;
  }
  d.total_replies += received;
  uint64_t engine_reqs = 0;
  for (auto& e : d.engines) engine_reqs += e->requests;
  j["channel"] = channel;
  j["requested"] = total;
  j["received"] = received;
  j["engine_requests"] = engine_reqs - engine_reqs0;
  j["errors"] = d.errors;
  if (!d.first_reply_error.empty()) j["first_error_content"] = d.first_reply_error;
  j["duplicate_or_unknown_replies"] = d.dup_or_unknown;
  j["replies_with_engine_prefix"] = d.with_engine_prefix;
  j["window_outstanding"] = window;
  j["clients"] = nclients;
  j["engines"] = d.engines.size();
  if (o.realistic) {
    j["iopub_expected"] = iopub_expected;
    j["iopub_received"] = d.iopub_msgs;
  }
  if (timed) j["foreign_cores_before"] = foreign_before;
  if (received != total)
    j["incomplete"] = Fmt("only %ld of %ld replies arrived (stalled or timed out)", received, total);
  PumpResult res;
  res.j = j;
  res.rtt_us = std::move(d.rtt_us);
  for (size_t c = 0; c < d.clients.size(); ++c) d.reactor.Remove(Reactor::Tag(Reactor::kClient, c));
  d.clients.clear();
  return res;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// -------------------------------------------------------------------------- phases

int MaxSocketsFor(int engines) { return 5 * engines + 128; }

void RaiseNofile() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::vector<std::string> DbArgs(const std::string& db) {
  if (db == "nodb") return {"--nodb"};
  if (db == "memory") return {};  // the default store (ipcontroller: DictDB)
  if (db == "sqlite") return {"--sqlitedb"};
  throw std::runtime_error("unknown db " + db);
}

Json RunRegistration(const Options& o, const std::string& db, int ping_ms) {
  std::vector<std::string> args = DbArgs(db);
  args.push_back("--ping=" + std::to_string(ping_ms));
  if (o.hwm) args.push_back("--hwm=" + std::to_string(*o.hwm));
  ControllerProcess ctrl(o, args);
  Json r;
  r["db"] = db;
  r["ping_ms"] = ping_ms;
  r["controller_cmd"] = ctrl.cmd();
  r["connection_files_s"] = ctrl.WaitReady(60);
  {
    Driver d(o, ctrl, MaxSocketsFor(o.reg_engines));
    d.CreateEngines(o.reg_engines);
    usleep(200000);  // let the registration DEALERs connect before the clock starts
    WaitQuiet(o, ctrl);
    r["register"] = d.RegisterAll(o.timeout);
    r["ctrl_rss_kib_registered"] = ctrl.Rss();
    if (o.idle_seconds > 0 && r["register"]["all_visible_in_connection_reply_s"].get<double>() > 0)
      r["idle_heartbeating"] = d.Idle(o.idle_seconds);
    r["bad_signatures"] = d.bad_sig;
    r["protocol_errors"] = d.protocol_errors;
    if (!d.first_error.empty()) r["first_error"] = d.first_error;
  }
  r["controller_sigterm_exit_s"] = ctrl.Stop();
  r["controller_log_lines"] = ctrl.LogLines();
  const Json& g = r["register"];
  Log(Fmt("[%s ping=%dms] %d engines: replies %.3f s, first pings echoed %.3f s, notifications %.3f s, "
          "visible in connection_reply %.3f s; ctrl CPU %.3f s; idle ctrl %.3f cores; RSS %ld KiB",
          db.c_str(), ping_ms, o.reg_engines, g["all_registration_replies_s"].get<double>(),
          g["all_echoed_a_ping_s"].get<double>(),
          g["all_registration_notifications_s"].get<double>(),
          g["all_visible_in_connection_reply_s"].get<double>(),
          g["window"]["ctrl_cpu_s"].get<double>(),
          r.contains("idle_heartbeating") ? r["idle_heartbeating"]["ctrl_cores"].get<double>() : -1.0,
          r["ctrl_rss_kib_registered"].get<long>()));
  return r;
}

Json RunTasks(const Options& o, const std::string& db) {
  std::vector<std::string> args = DbArgs(db);
  if (o.task_ping_ms > 0) args.push_back("--ping=" + std::to_string(o.task_ping_ms));
  if (o.hwm) args.push_back("--hwm=" + std::to_string(*o.hwm));
  ControllerProcess ctrl(o, args);
  Json r;
  r["db"] = db;
  r["controller_cmd"] = ctrl.cmd();
  r["connection_files_s"] = ctrl.WaitReady(60);
  r["runs"] = Json::array();
  {
    Driver d(o, ctrl, MaxSocketsFor(o.task_engines) + 4 * o.clients + 16);
    d.CreateEngines(o.task_engines);
    usleep(100000);
    Json reg = d.RegisterAll(std::max(o.timeout, 60.0));
    r["register_s"] = reg["all_visible_in_connection_reply_s"];
    if (reg["all_visible_in_connection_reply_s"].get<double>() < 0)
      throw std::runtime_error("task engines did not register; log:\n" + ctrl.LogTail());
    long warm = std::min<long>(std::max<long>(o.tasks / 20, 200), 5000);
    for (int round = 0; round < o.rounds; ++round) {
      for (const auto& ch : o.channels) {
        Pump(d, ch, warm, o.window, o.clients, false, false);  // warm-up, untimed
        PumpResult p = Pump(d, ch, o.tasks, o.window, o.clients, true, false);
        p.j["round"] = round;
        p.j["kind"] = "throughput";
        p.j["ctrl_rss_kib_after"] = ctrl.Rss();
        const Json& j = p.j;
        Log(Fmt("[%s] %-4s M=%ld W=%d: %.0f tasks/s, ctrl %.2f us CPU/task (%.2f cores), "
                "driver %.2f us/task, foreign %.2f cores%s%s",
                db.c_str(), ch.c_str(), o.tasks, o.window, j.value("tasks_per_s", 0.0),
                j.value("ctrl_cpu_us_per_task", 0.0), j.value("ctrl_cores", 0.0),
                j.value("driver_cpu_us_per_task", 0.0), j.value("foreign_cores", 0.0),
                o.realistic ? Fmt(", iopub %ld/%ld", j["iopub_received"].get<long>(),
                                  j["iopub_expected"].get<long>()).c_str() : "",
                j.contains("incomplete") ? (" INCOMPLETE: " + j["incomplete"].get<std::string>()).c_str() : ""));
        if (j["errors"].get<long>() > 0 || j["duplicate_or_unknown_replies"].get<long>() > 0)
          Log(Fmt("    errors %ld, duplicate/unknown replies %ld %s", j["errors"].get<long>(),
                  j["duplicate_or_unknown_replies"].get<long>(),
                  j.value("first_error_content", std::string()).c_str()));
        r["runs"].push_back(p.j);
        if (o.rtt_calls > 0) {
          PumpResult q = Pump(d, ch, o.rtt_calls, 1, 1, true, true);
          q.j["round"] = round;
          q.j["kind"] = "round_trip";
          q.j["rtt_us"] = {{"median", Median(q.rtt_us)},
                           {"p10", Percentile(q.rtt_us, 0.1)},
                           {"p90", Percentile(q.rtt_us, 0.9)},
                           {"p99", Percentile(q.rtt_us, 0.99)},
                           {"n", q.rtt_us.size()}};
          Log(Fmt("[%s] %-4s window 1, %ld calls: round trip median %.0f us (p10 %.0f, p90 %.0f), "
                  "ctrl %.2f us CPU/task",
                  db.c_str(), ch.c_str(), o.rtt_calls, q.j["rtt_us"]["median"].get<double>(),
                  q.j["rtt_us"]["p10"].get<double>(), q.j["rtt_us"]["p90"].get<double>(),
                  q.j.value("ctrl_cpu_us_per_task", 0.0)));
          r["runs"].push_back(q.j);
        }
      }
    }
    r["bad_signatures"] = d.bad_sig;
    r["protocol_errors"] = d.protocol_errors;
    if (!d.first_error.empty()) r["first_error"] = d.first_error;
  }
  r["controller_sigterm_exit_s"] = ctrl.Stop();
  r["controller_log_lines"] = ctrl.LogLines();
  r["controller_log_tail"] = ctrl.LogTail(10);
  return r;
}

// ------------------------------------------------------------------------------- main

const char* kUsage = R"(controller_driver: synthetic load for shoal-controller (no Python)

  --shoal-controller PATH  the binary (default: <repo>/build/release/bin/shoal-controller,
                           else build/dev/bin/..., else next to this driver)
  --controller-cmd "CMD"   any controller command line instead, e.g. the stock one:
                           "/usr/bin/python3 -m ipyparallel.controller" (CPU = process tree)
  --stock                  shorthand for the stock ipcontroller command above
  --modes register,tasks   which benchmarks (default both)
  --db nodb,memory         controller stores to measure (default both; also: sqlite)
  --engines N              fake engines for the registration benchmark (default 1000)
  --ping MS                heartbeat period for the registration benchmark (default 100)
  --also-ping MS,...       also measure registration with these periods (e.g. 3000)
  --idle-seconds S         after registering, measure idle heartbeating CPU (default 3)
  --task-engines K         fake engines for the task benchmark (default 4)
  --task-ping MS           heartbeat period for the task benchmark (default: controller's)
  --tasks M                requests per throughput window (default 200000)
  --window W               outstanding requests per client (default 1000)
  --clients C              fake clients (default 1)
  --channels task,mux      channels to pump (default both)
  --rtt-calls L            window-1 round trips per channel (default 5000, 0 = skip)
  --rounds R               repetitions of each task measurement (default 1)
  --hwm N                  pass --hwm=N to the controller (default: its default, 1)
  --realistic              engines also publish iopub status busy/idle; client subscribes
  --no-verify              skip HMAC checks in the fake engines/clients
  --payload BYTES          size of the stand-in function buffer (default 400)
  --controller-arg ARG     extra controller argument (repeatable)
  --timeout S              per-phase timeout (default 300)
  --quiet-threshold C      wait for foreign load below C cores before windows (default 0.35)
  --quiet-wait S           at most this long (default 10)
  --quick                  smoke run: 200 engines, 20000 tasks, 500 round trips
  --json PATH              where to write results (default <repo>/bench/results/...)
  --keep                   keep the temporary profile directories (and controller.log)
  --log-level LEVEL        the controller's --log-level (default WARN)
)";

std::string DefaultController(const char* argv0) {
  std::string root = SHOAL_SOURCE_DIR;
  for (const char* sub : {"/build/release/bin/shoal-controller", "/build/dev/bin/shoal-controller"})
    if (access((root + sub).c_str(), X_OK) == 0) return root + sub;
  std::error_code ec;
  fs::path self = fs::canonical("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path sib : {self.parent_path() / "shoal-controller",
                         self.parent_path().parent_path() / "bin" / "shoal-controller"})
      if (access(sib.c_str(), X_OK) == 0) return sib.string();
  }
  (void)argv0;
  return root + "/build/release/bin/shoal-controller";
}

void OnSignal(int) { g_interrupted.store(true); }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string shoal_path, controller_cmd;
  bool quick = false;
  long tasks = -1, rtt = -1;
  int reg_engines = -1;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto value = [&](size_t& i, const std::string& a, const std::string& name,
                   std::string& out) -> bool {
    if (a == name) {
      if (i + 1 >= args.size()) throw std::runtime_error(name + " needs a value");
      out = args[++i];
      return true;
    }
    if (a.rfind(name + "=", 0) == 0) {
      out = a.substr(name.size() + 1);
      return true;
    }
    return false;
  };
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      std::string v;
      if (a == "--help" || a == "-h") {
        std::cout << kUsage;
        return 0;
      } else if (value(i, a, "--shoal-controller", v)) shoal_path = v;
      else if (value(i, a, "--controller-cmd", v)) controller_cmd = v;
      else if (a == "--stock") controller_cmd = "/usr/bin/python3 -m ipyparallel.controller";
      else if (value(i, a, "--modes", v)) o.modes = Split(v, ',');
      else if (value(i, a, "--db", v)) o.dbs = Split(v, ',');
      else if (value(i, a, "--engines", v)) reg_engines = std::stoi(v);
      else if (value(i, a, "--ping", v)) o.reg_ping_ms = std::stoi(v);
      else if (value(i, a, "--also-ping", v)) for (auto& p : Split(v, ',')) o.reg_pings.push_back(std::stoi(p));
      else if (value(i, a, "--idle-seconds", v)) o.idle_seconds = std::stod(v);
      else if (value(i, a, "--task-engines", v)) o.task_engines = std::stoi(v);
      else if (value(i, a, "--task-ping", v)) o.task_ping_ms = std::stoi(v);
      else if (value(i, a, "--tasks", v)) tasks = std::stol(v);
      else if (value(i, a, "--window", v)) o.window = std::stoi(v);
      else if (value(i, a, "--clients", v)) o.clients = std::stoi(v);
      else if (value(i, a, "--channels", v)) o.channels = Split(v, ',');
      else if (value(i, a, "--rtt-calls", v)) rtt = std::stol(v);
      else if (value(i, a, "--rounds", v)) o.rounds = std::stoi(v);
      else if (value(i, a, "--hwm", v)) o.hwm = std::stoi(v);
      else if (a == "--realistic") o.realistic = true;
      else if (a == "--no-verify") o.verify = false;
      else if (value(i, a, "--payload", v)) o.payload = std::stoi(v);
      else if (value(i, a, "--controller-arg", v)) o.extra_args.push_back(v);
      else if (value(i, a, "--timeout", v)) o.timeout = std::stod(v);
      else if (value(i, a, "--quiet-threshold", v)) o.quiet_threshold = std::stod(v);
      else if (value(i, a, "--quiet-wait", v)) o.quiet_wait = std::stod(v);
      else if (a == "--quick") quick = true;
      else if (value(i, a, "--json", v)) o.json_out = v;
      else if (a == "--keep") o.keep = true;
      else if (value(i, a, "--log-level", v)) o.log_level = v;
      else throw std::runtime_error("unknown argument " + a + " (see --help)");
    }
  } catch (const std::exception& e) {
    std::cerr << "controller_driver: " << e.what() << "\n";
    return 2;
  }
  if (quick) {
    o.reg_engines = 200;
    o.tasks = 20000;
    o.rtt_calls = 500;
    o.idle_seconds = 1;
    o.quiet_wait = std::min(o.quiet_wait, 3.0);
  }
  if (reg_engines > 0) o.reg_engines = reg_engines;
  if (tasks > 0) o.tasks = tasks;
  if (rtt >= 0) o.rtt_calls = rtt;
  if (o.task_engines < 1 || o.clients < 1 || o.window < 1) {
    std::cerr << "controller_driver: --task-engines, --clients and --window must be >= 1\n";
    return 2;
  }
  if (!controller_cmd.empty()) {
    o.controller_cmd = Split(controller_cmd, ' ');
    o.tree_cpu = true;
    o.system = "custom";
    if (controller_cmd.find("ipyparallel") != std::string::npos) o.system = "stock";
  } else {
    std::string path = shoal_path.empty() ? DefaultController(argv[0]) : shoal_path;
    if (access(path.c_str(), X_OK) != 0) {
      std::cerr << "controller_driver: no executable shoal-controller at " << path
                << " (build it, or pass --shoal-controller PATH)\n";
      return 2;
    }
    o.controller_cmd = {fs::absolute(path).string()};
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  RaiseNofile();

  Json res;
  res["system"] = o.system;
  res["controller"] = o.controller_cmd;
  res["time"] = [] {
    time_t t = time(nullptr);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", localtime(&t));
    return std::string(b);
  }();
  res["loadavg_at_start"] = LoadAvg();
  res["ncpu"] = sysconf(_SC_NPROCESSORS_ONLN);
  int zmaj, zmin, zpat;
  zmq_version(&zmaj, &zmin, &zpat);
  res["libzmq"] = Fmt("%d.%d.%d", zmaj, zmin, zpat);
  res["options"] = {{"engines", o.reg_engines}, {"ping_ms", o.reg_ping_ms},
                    {"task_engines", o.task_engines}, {"tasks", o.tasks}, {"window", o.window},
                    {"clients", o.clients}, {"rtt_calls", o.rtt_calls}, {"rounds", o.rounds},
                    {"realistic", o.realistic}, {"verify", o.verify}, {"payload", o.payload},
                    {"hwm", o.hwm ? Json(*o.hwm) : Json(nullptr)}, {"dbs", o.dbs},
                    {"channels", o.channels}, {"quick", quick}};
  res["registration"] = Json::array();
  res["tasks"] = Json::array();
  Log(Fmt("controller %s, loadavg %s", o.controller_cmd[0].c_str(), res["loadavg_at_start"].dump().c_str()));
  int rc = 0;
  try {
    bool do_reg = std::find(o.modes.begin(), o.modes.end(), "register") != o.modes.end();
    bool do_tasks = std::find(o.modes.begin(), o.modes.end(), "tasks") != o.modes.end();
    for (const auto& db : o.dbs) {
      if (do_reg) {
        std::vector<int> pings{o.reg_ping_ms};
        for (int p : o.reg_pings) pings.push_back(p);
        for (int p : pings) {
          try {
            res["registration"].push_back(RunRegistration(o, db, p));
          } catch (const Interrupted&) {
            throw;
          } catch (const std::exception& e) {
            Log(std::string("registration failed: ") + e.what());
            res["registration"].push_back({{"db", db}, {"ping_ms", p}, {"error", e.what()}});
            rc = 1;
          }
        }
      }
      if (do_tasks) {
        try {
          res["tasks"].push_back(RunTasks(o, db));
        } catch (const Interrupted&) {
          throw;
        } catch (const std::exception& e) {
          Log(std::string("tasks failed: ") + e.what());
          res["tasks"].push_back({{"db", db}, {"error", e.what()}});
          rc = 1;
        }
      }
    }
  } catch (const Interrupted&) {
    Log("interrupted; controller stopped");
    res["interrupted"] = true;
    rc = 130;
  }
  res["loadavg_at_end"] = LoadAvg();

  // summary table
  std::cout << "\n| store | benchmark | figure | value |\n|---|---|---|---|\n";
  for (const auto& r : res["registration"]) {
    if (r.contains("error")) continue;
    const Json& g = r["register"];
    std::string b = Fmt("register %zu engines, ping %d ms", g["engines"].get<size_t>(), r["ping_ms"].get<int>());
    std::cout << Fmt("| %s | %s | all visible in connection_reply | %.3f s |\n", r["db"].get<std::string>().c_str(), b.c_str(), g["all_visible_in_connection_reply_s"].get<double>());
    std::cout << Fmt("| %s | %s | all registration_replies | %.3f s |\n", r["db"].get<std::string>().c_str(), b.c_str(), g["all_registration_replies_s"].get<double>());
    std::cout << Fmt("| %s | %s | controller CPU for it | %.3f s |\n", r["db"].get<std::string>().c_str(), b.c_str(), g["window"]["ctrl_cpu_s"].get<double>());
    if (r.contains("idle_heartbeating"))
      std::cout << Fmt("| %s | %s | controller idle, heartbeating | %.4f cores |\n", r["db"].get<std::string>().c_str(), b.c_str(), r["idle_heartbeating"]["ctrl_cores"].get<double>());
  }
  for (const auto& t : res["tasks"]) {
    if (t.contains("error")) continue;
    for (const auto& j : t["runs"]) {
      std::string b = Fmt("%s %s, %zu engines", j["channel"].get<std::string>().c_str(),
                          j["kind"] == "throughput" ? Fmt("W=%d", j["window_outstanding"].get<int>()).c_str() : "round trip",
                          j["engines"].get<size_t>());
      if (j["kind"] == "throughput") {
        std::cout << Fmt("| %s | %s | throughput | %.0f tasks/s |\n", t["db"].get<std::string>().c_str(), b.c_str(), j.value("tasks_per_s", 0.0));
      } else {
        std::cout << Fmt("| %s | %s | median round trip | %.0f us |\n", t["db"].get<std::string>().c_str(), b.c_str(), j["rtt_us"]["median"].get<double>());
      }
      std::cout << Fmt("| %s | %s | controller CPU per task | %.2f us |\n", t["db"].get<std::string>().c_str(), b.c_str(), j.value("ctrl_cpu_us_per_task", 0.0));
    }
  }
  std::cout << "loadavg start " << res["loadavg_at_start"].dump() << " end " << res["loadavg_at_end"].dump() << "\n";

  std::string path = o.json_out;
  if (path.empty()) {
    std::string dir = std::string(SHOAL_SOURCE_DIR) + "/bench/results";
    std::error_code ec;
    fs::create_directories(dir, ec);
    char b[32];
    time_t t = time(nullptr);
    strftime(b, sizeof b, "%Y%m%d-%H%M%S", localtime(&t));
    path = dir + "/controller_driver_" + o.system + "_" + b + (quick ? "_quick" : "") + ".json";
  }
  std::ofstream f(path);
  f << res.dump(1) << "\n";
  std::cout << "wrote " << path << "\n";
  return rc;
}
