// Client::Connect and Close: finding the connection file, opening the sockets, the engine
// table.
#include <sys/stat.h>

#include <cstdlib>
#include <thread>

#include "shoal/client/client_core.h"
#include "shoal/common/log.h"
#include "shoal/wire/ids.h"
#include "shoal/wire/json_get.h"

namespace shoal {
namespace {

std::string ClientFilePath(const ConnectOptions& o) {
  if (!o.connection_file.empty()) return o.connection_file;
  wire::ProfileArgs args;
  if (!o.profile.empty()) args.profile = o.profile;
  if (!o.profile_dir.empty()) args.profile_dir = o.profile_dir;
  if (!o.ipython_dir.empty()) args.ipython_dir = o.ipython_dir;
  if (!o.cluster_id.empty()) args.cluster_id = o.cluster_id;
  return wire::ResolveProfileDir(args).client_file();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// interface + port, with a wildcard bind address replaced by the controller's location.
std::string Endpoint(const wire::ConnectionInfo& info, int port) {
  std::string iface = info.interface;
  for (const char* wild : {"0.0.0.0", "*"}) {
    std::string suffix = std::string("://") + wild;
    if (iface.size() >= suffix.size() &&
        iface.compare(iface.size() - suffix.size(), suffix.size(), suffix) == 0) {
      iface = iface.substr(0, iface.size() - suffix.size()) + "://" +
              (info.location.empty() ? "127.0.0.1" : info.location);
    }
  }
  return wire::JoinEndpoint(iface, port);
}

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() { Close(); }

Result<std::unique_ptr<Client>> Client::Connect(const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::string path = ClientFilePath(options);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<int64_t>(options.timeout_s * 1e6));
  while (!FileExists(path)) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status::NotFound("no connection file at " + path + " after " +
                              std::to_string(options.timeout_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto info = wire::ReadConnectionFile(path);
  if (!info.ok()) {
    // The controller writes atomically, but give a file being replaced one more chance.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    info = wire::ReadConnectionFile(path);
    if (!info.ok()) return info.status().WithContext(path);
  }
  impl->info = std::move(info).value();
  impl->session = wire::NewSessionId();
  impl->username = options.username;
  if (impl->username.empty()) {
    const char* user = std::getenv("USER");
    impl->username = user && *user ? user : "username";
  }
  SHOAL_ASSIGN_OR_RETURN(impl->send_signer,
                         wire::Signer::Create(impl->info.key, impl->info.signature_scheme));
  SHOAL_ASSIGN_OR_RETURN(impl->io_signer,
                         wire::Signer::Create(impl->info.key, impl->info.signature_scheme));
  impl->book = std::make_unique<client::ResultBook>(impl->session);
  SHOAL_RETURN_NOT_OK(impl->OpenSockets().WithContext("connecting to " + path));
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] { raw->IoLoop(); });
  std::unique_ptr<Client> client(new Client(std::move(impl)));
  double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
  SHOAL_RETURN_NOT_OK(client->impl_->FetchEngines(std::max(left, 1.0)));
  return client;
}

Status Client::Impl::OpenSockets() {
  std::string curve_public, curve_secret;
  if (info.curve_serverkey && !info.curve_serverkey->empty()) {
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0)
      return Status::Unavailable("the controller uses CurveZMQ, which this libzmq lacks");
    curve_public = pub;
    curve_secret = sec;
  }
  auto open = [&](zmq::socket_t& s, zmq::socket_type type, int port, const char* name) -> Status {
    std::string endpoint = Endpoint(info, port);
    try {
      s = zmq::socket_t(ctx, type);
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::sndhwm, 0);
      s.set(zmq::sockopt::rcvhwm, 0);
      if (type == zmq::socket_type::sub) s.set(zmq::sockopt::subscribe, "");
      if (!curve_secret.empty()) {
        s.set(zmq::sockopt::curve_serverkey, *info.curve_serverkey);
        s.set(zmq::sockopt::curve_publickey, curve_public);
        s.set(zmq::sockopt::curve_secretkey, curve_secret);
      }
      s.connect(endpoint);
      return Status::Ok();
    } catch (const zmq::error_t& e) {
      return client::ZmqStatus(e, std::string(name) + " socket to " + endpoint);
    }
  };
  const wire::ChannelPorts& p = info.ports;
  if (p.broadcast.empty()) return Status::InvalidArgument("the client file has no broadcast port");
  // Subscribers first, so that they are (likely) joined before the first request.
  SHOAL_RETURN_NOT_OK(open(notification, zmq::socket_type::sub, p.notification, "notification"));
  SHOAL_RETURN_NOT_OK(open(iopub, zmq::socket_type::sub, p.iopub, "iopub"));
  SHOAL_RETURN_NOT_OK(open(query, zmq::socket_type::dealer, p.registration, "query"));
  SHOAL_RETURN_NOT_OK(open(mux, zmq::socket_type::dealer, p.mux, "mux"));
  SHOAL_RETURN_NOT_OK(open(task, zmq::socket_type::dealer, p.task, "task"));
  SHOAL_RETURN_NOT_OK(open(control, zmq::socket_type::dealer, p.control, "control"));
  SHOAL_RETURN_NOT_OK(open(broadcast, zmq::socket_type::dealer, p.broadcast[0], "broadcast"));
  return Status::Ok();
}

Status Client::Impl::FetchEngines(double timeout_s) {
  Request req;
  req.channel = Channel::kQuery;
  req.msg_type = "connection_request";
  auto sent = Send(std::move(req));
  if (!sent.ok()) return sent.status();
  auto reply = (*sent)[0].reply.Get(Micros(static_cast<int64_t>(timeout_s * 1e6)));
  if (!reply.ok()) {
    if (reply.status().code() == StatusCode::kTimedOut)
      return Status::TimedOut("the controller did not answer connection_request within " +
                              std::to_string(timeout_s) + " s");
    return reply.status();
  }
  const Json& c = (*reply)->content();
  if (wire::GetString(c, "status") != "ok")
    return Status::Unavailable("connection_request refused: " + (*reply)->error().message());
  const Json* eng = wire::Find(c, "engines");
  std::lock_guard<std::mutex> lock(engines_mu);
  if (eng && eng->is_object()) {
    for (auto it = eng->begin(); it != eng->end(); ++it) {
      if (!it.value().is_string()) continue;
      char* end = nullptr;
      long id = std::strtol(it.key().c_str(), &end, 10);
      if (end && *end == '\0') engines[static_cast<int>(id)] = it.value().get<std::string>();
    }
  }
  engines_cv.notify_all();
  return Status::Ok();
}

void Client::Close() {
  if (!impl_) return;
  if (impl_->queue.Close() && impl_->io_thread.joinable()) impl_->io_thread.join();
}

const std::string& Client::session() const { return impl_->session; }

std::vector<EngineInfo> Client::engines() const {
  std::lock_guard<std::mutex> lock(impl_->engines_mu);
  std::vector<EngineInfo> out;
  for (const auto& [id, uuid] : impl_->engines) out.push_back({id, uuid});
  return out;
}

std::vector<int> Client::ids() const {
  std::lock_guard<std::mutex> lock(impl_->engines_mu);
  std::vector<int> out;
  for (const auto& kv : impl_->engines) out.push_back(kv.first);
  return out;
}

Status Client::WaitForEngines(size_t n, Micros timeout) const {
  std::unique_lock<std::mutex> lock(impl_->engines_mu);
  if (impl_->engines_cv.wait_for(lock, timeout, [&] { return impl_->engines.size() >= n; }))
    return Status::Ok();
  return Status::TimedOut("waited for " + std::to_string(n) + " engines, have " +
                          std::to_string(impl_->engines.size()));
}

size_t Client::outstanding() const { return impl_->outstanding.load(); }

}  // namespace shoal
