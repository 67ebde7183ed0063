#include "shoal/engine/python_host.h"

#include <pybind11/embed.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "shoal/common/log.h"

namespace py = pybind11;

namespace shoal::engine {
namespace {

// A received zmq frame handed to Python without a copy: a read-only buffer object that
// keeps the frame alive for as long as Python (e.g. a numpy array viewing it) holds it.
struct Frame {
  zmq::message_t msg;
};

IopubSink* g_sink = nullptr;
PyObject* g_flush_streams = nullptr;  // EngineRuntime.flush_streams, for pending calls

// Result buffers sent without a copy stay referenced until zmq's I/O thread is done with
// them; it cannot touch Python objects, so it queues them here for the main thread.
std::mutex g_sent_mu;
std::vector<Py_buffer*> g_sent;

void QueueRelease(void* /*data*/, void* hint) {
  std::lock_guard<std::mutex> lock(g_sent_mu);
  g_sent.push_back(static_cast<Py_buffer*>(hint));
}

// Frames larger than this travel without a copy (pyzmq's copy_threshold is 64 KiB too).
constexpr Py_ssize_t kZeroCopyThreshold = 64 * 1024;

// Python buffer objects -> zmq frames. Non-contiguous exporters go through tobytes().
Frames ToFrames(py::handle seq) {
  Frames out;
  for (py::handle item : seq) {
    py::object obj = py::reinterpret_borrow<py::object>(item);
    auto* view = new Py_buffer;
    if (PyObject_GetBuffer(obj.ptr(), view, PyBUF_C_CONTIGUOUS) != 0) {
      PyErr_Clear();
      obj = py::module_::import("builtins").attr("memoryview")(obj).attr("tobytes")();
      if (PyObject_GetBuffer(obj.ptr(), view, PyBUF_SIMPLE) != 0) {
        delete view;
        throw py::error_already_set();
      }
    }
    if (view->len < kZeroCopyThreshold) {
      out.emplace_back(view->buf, static_cast<size_t>(view->len));
      PyBuffer_Release(view);
      delete view;
    } else {
      out.emplace_back(view->buf, static_cast<size_t>(view->len), &QueueRelease, view);
    }
  }
  return out;
}

std::string PyStr(py::handle h) { return py::str(h).cast<std::string>(); }

}  // namespace
}  // namespace shoal::engine

PYBIND11_EMBEDDED_MODULE(shoal_engine_host, m) {
  using shoal::engine::Frame;
  m.doc() = "The C++ side of a shoal engine (see docs/engine.md).";
  py::class_<Frame>(m, "Frame", py::buffer_protocol())
      .def_buffer([](Frame& f) {
        return py::buffer_info(f.msg.data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(f.msg.size())}, {1}, /*readonly=*/true);
      })
      .def("__len__", [](const Frame& f) { return f.msg.size(); })
      .def("__bytes__", [](const Frame& f) {
        return py::bytes(static_cast<const char*>(f.msg.data()), f.msg.size());
      });
  m.def(
      "publish",
      [](const std::string& msg_type, const std::string& content_json, const std::string& topic,
         py::object buffers, py::object metadata_json) {
        if (!shoal::engine::g_sink) throw std::runtime_error("no iopub sink");
        shoal::engine::Frames frames;
        if (!buffers.is_none()) frames = shoal::engine::ToFrames(buffers);
        std::string md = metadata_json.is_none() ? "" : metadata_json.cast<std::string>();
        shoal::engine::g_sink->Publish(msg_type, content_json, topic, std::move(frames), md);
      },
      py::arg("msg_type"), py::arg("content_json"), py::arg("topic"),
      py::arg("buffers") = py::none(), py::arg("metadata_json") = py::none());
}

namespace shoal::engine {

struct PythonHost::State {
  PythonConfig config;
  py::object runtime;
  py::object apply, execute, clear, flush_streams;
  struct sigaction python_sigint {};
  struct sigaction ignore_sigint {};
  std::string engine_info_json;

  // SIGINT interrupts user code only while a request runs (as ipykernel does).
  void AllowInterrupts() { sigaction(SIGINT, &python_sigint, nullptr); }
  void BlockInterrupts() {
    sigaction(SIGINT, &ignore_sigint, nullptr);
    // A SIGINT that arrived just as the request ended must not hit the next one.
    if (PyErr_CheckSignals() != 0) PyErr_Clear();
  }

  // Internal errors (bugs in the runtime, not user code) as IPython Parallel error content.
  std::string ErrorContent(py::error_already_set& e, const char* method, std::string* ename) {
    nlohmann::json c = {{"status", "error"},
                        {"ename", "ShoalEngineError"},
                        {"evalue", e.what()},
                        {"traceback", nlohmann::json::array({e.what()})},
                        {"engine_info",
                         {{"engine_uuid", config.engine_uuid},
                          {"engine_id", config.engine_id},
                          {"method", method}}}};
    if (e.type()) c["ename"] = PyStr(e.type().attr("__name__"));
    *ename = c["ename"].get<std::string>();
    SHOAL_LOG(Error) << "engine runtime error in " << method << ": " << e.what();
    return c.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
};

std::string PythonHost::DefaultPython() {
  if (const char* venv = std::getenv("VIRTUAL_ENV")) {
    std::string candidate = std::string(venv) + "/bin/python";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return SHOAL_BUILD_PYTHON;
}

std::string PythonHost::DefaultShoalPath() {
  if (const char* dir = std::getenv("SHOAL_PYTHON_DIR")) return dir;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "lib" / "shoal" / "python";
    if (fs::exists(installed / "shoal", ec)) return installed.string();
  }
  return std::string(SHOAL_SOURCE_DIR) + "/python";
}

Result<std::unique_ptr<PythonHost>> PythonHost::Start(const PythonConfig& config, IopubSink* sink) {
  g_sink = sink;
  PyConfig pc;
  PyConfig_InitPythonConfig(&pc);
  pc.parse_argv = 0;
  pc.install_signal_handlers = 1;
  // The interpreter's path decides sys.prefix: a venv's python gives the venv's packages.
  PyStatus st = PyConfig_SetBytesString(&pc, &pc.program_name, config.python.c_str());
  char arg0[] = "shoal-engine";
  char* argv[] = {arg0};
  if (!PyStatus_Exception(st)) st = PyConfig_SetBytesArgv(&pc, 1, argv);
  if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&pc);
  PyConfig_Clear(&pc);
  if (PyStatus_Exception(st))
    return Status::Unavailable(std::string("cannot start Python (") + config.python +
                               "): " + (st.err_msg ? st.err_msg : "unknown error"));

  std::unique_ptr<PythonHost> host(new PythonHost);
  host->s_ = std::make_unique<State>();
  State& s = *host->s_;
  s.config = config;
  try {
    py::module_ sys = py::module_::import("sys");
    py::list path = sys.attr("path");
    path.insert(0, config.shoal_path);
    path.insert(0, "");  // modules in the working directory, as in IPython
    py::module_ bridge = py::module_::import("shoal_engine_host");
    bridge.attr("engine_id") = config.engine_id;
    bridge.attr("engine_uuid") = config.engine_uuid;
    py::object options = py::module_::import("json").attr("loads")(config.runtime_options.dump());
    py::module_ rt = py::module_::import("shoal._engine.runtime");
    s.runtime = rt.attr("EngineRuntime")(bridge, options);
    s.apply = s.runtime.attr("apply");
    s.execute = s.runtime.attr("execute");
    s.clear = s.runtime.attr("clear");
    s.flush_streams = s.runtime.attr("flush_streams");
    g_flush_streams = s.flush_streams.ptr();
  } catch (py::error_already_set& e) {
    return Status::Unavailable(std::string("cannot start the engine runtime: ") + e.what());
  }
  sigaction(SIGINT, nullptr, &s.python_sigint);
  s.ignore_sigint.sa_handler = SIG_IGN;
  sigemptyset(&s.ignore_sigint.sa_mask);
  sigaction(SIGINT, &s.ignore_sigint, nullptr);
  return host;
}

PythonHost::~PythonHost() {
  // The interpreter is not finalized: user threads could block Py_FinalizeEx forever, and
  // the process exits right after this.
  g_flush_streams = nullptr;
  if (s_) {
    s_->runtime.release();
    s_->apply.release();
    s_->execute.release();
    s_->clear.release();
    s_->flush_streams.release();
  }
  g_sink = nullptr;
}

ApplyOutcome PythonHost::Apply(const std::string& msg_id, const std::string& serializer,
                               Frames buffers) {
  ApplyOutcome out;
  try {
    py::list bufs(buffers.size());
    for (size_t i = 0; i < buffers.size(); ++i)
      bufs[i] = py::cast(new Frame{std::move(buffers[i])}, py::return_value_policy::take_ownership);
    s_->AllowInterrupts();
    py::object r;
    try {
      r = s_->apply(msg_id, serializer, bufs);
    } catch (...) {
      s_->BlockInterrupts();
      throw;
    }
    s_->BlockInterrupts();
    py::tuple t = r.cast<py::tuple>();
    if (t[0].is_none()) {
      out.ok = true;
      out.result = ToFrames(t[1]);
    } else {
      out.error_json = t[0].cast<std::string>();
      auto j = nlohmann::json::parse(out.error_json, nullptr, false);
      if (j.is_object() && j.contains("ename") && j["ename"].is_string())
        out.ename = j["ename"].get<std::string>();
    }
  } catch (py::error_already_set& e) {
    out.ok = false;
    out.error_json = s_->ErrorContent(e, "apply", &out.ename);
  }
  return out;
}

ExecuteOutcome PythonHost::Execute(const std::string& msg_id, std::string_view content_json) {
  ExecuteOutcome out;
  try {
    s_->AllowInterrupts();
    py::object r;
    try {
      r = s_->execute(msg_id, py::str(content_json.data(), content_json.size()));
    } catch (...) {
      s_->BlockInterrupts();
      throw;
    }
    s_->BlockInterrupts();
    py::tuple t = r.cast<py::tuple>();
    out.status = t[0].cast<std::string>();
    out.content_json = t[1].cast<std::string>();
  } catch (py::error_already_set& e) {
    std::string ename;
    out.status = "error";
    out.content_json = s_->ErrorContent(e, "execute", &ename);
  }
  return out;
}

Status PythonHost::Clear() {
  try {
    s_->clear();
    return Status::Ok();
  } catch (py::error_already_set& e) {
    return Status::RemoteError(std::string("clear failed: ") + e.what());
  }
}

void PythonHost::FlushStreams() {
  try {
    s_->flush_streams();
  } catch (py::error_already_set& e) {
    SHOAL_LOG(Warn) << "flushing output failed: " << e.what();
  }
}

void PythonHost::ReleaseSentBuffers() {
  std::vector<Py_buffer*> done;
  {
    std::lock_guard<std::mutex> lock(g_sent_mu);
    done.swap(g_sent);
  }
  for (Py_buffer* v : done) {
    PyBuffer_Release(v);
    delete v;
  }
}

bool PythonHost::HasUnreleasedBuffers() const {
  std::lock_guard<std::mutex> lock(g_sent_mu);
  return !g_sent.empty();
}

namespace {
int FlushPending(void*) {
  if (!g_flush_streams) return 0;
  PyObject* r = PyObject_CallNoArgs(g_flush_streams);
  if (r) {
    Py_DECREF(r);
  } else {
    PyErr_Clear();  // a flush failure must never surface inside user code
  }
  return 0;
}
int ExitPending(void*) {
  PyErr_SetString(PyExc_SystemExit, "the engine is shutting down");
  return -1;
}
}  // namespace

void PythonHost::RequestFlush() { Py_AddPendingCall(&FlushPending, nullptr); }
void PythonHost::RequestExit() { Py_AddPendingCall(&ExitPending, nullptr); }

PythonHost::Unlocked::Unlocked() : state_(PyEval_SaveThread()) {}
PythonHost::Unlocked::~Unlocked() { PyEval_RestoreThread(static_cast<PyThreadState*>(state_)); }

}  // namespace shoal::engine
