// shoal._core: the C++ client core (include/shoal/client.h) for Python.
//
//   core = _core.ClientCore(profile_dir=..., timeout=10.0)
//   [s] = core.send("mux", "apply_request", buffers=frames, targets=[0])
//   reply = s.reply.result(timeout=5)          # GIL released while waiting
//   shoal.serialize.deserialize(reply.buffers) # buffers: read-only, zero-copy Frame objects
//
// Threading: every blocking call releases the GIL. Done-callbacks run on the client's I/O
// thread and take the GIL to call into Python. Large buffers handed to send() (>= 64 KiB)
// are sent without a copy; their Python objects are released (under the GIL) soon after
// libzmq is done with them, so they must not be modified until the reply arrives.
// Status -> exception is one function: RaiseStatus.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "shoal/client.h"

namespace py = pybind11;
using namespace shoal;

namespace {

PyObject* g_shoal_error = nullptr;  // _core.ShoalError; set at import, never freed

// The one conversion of a Status into a Python exception.
[[noreturn]] void RaiseStatus(const Status& st) {
  switch (st.code()) {
    case StatusCode::kTimedOut:
      PyErr_SetString(PyExc_TimeoutError, st.message().c_str());
      throw py::error_already_set();
    case StatusCode::kInvalidArgument:
      throw py::value_error(st.message());
    case StatusCode::kNotFound:
      throw py::key_error(st.message());
    default: {
      py::object exc = py::reinterpret_borrow<py::object>(g_shoal_error)(st.ToString());
      exc.attr("code") = std::string(StatusCodeName(st.code()));
      PyErr_SetObject(g_shoal_error, exc.ptr());
      throw py::error_already_set();
    }
  }
}

template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) RaiseStatus(r.status());
  return std::move(r).value();
}

Micros ToMicros(double seconds) {
  if (seconds < 0) seconds = 0;
  return Micros(static_cast<int64_t>(seconds * 1e6));
}

// Waits in slices so that Ctrl-C reaches Python; `None` timeout waits until done.
template <typename Ready>
bool WaitInterruptibly(std::optional<double> timeout, Ready ready) {
  auto deadline = std::chrono::steady_clock::now() + ToMicros(timeout.value_or(0));
  for (;;) {
    Micros slice(100'000);
    if (timeout) {
      auto left = std::chrono::duration_cast<Micros>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) left = Micros(0);
      slice = std::min(slice, left);
    }
    bool done;
    {
      py::gil_scoped_release nogil;
      done = ready(slice);
    }
    if (done) return true;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (timeout && std::chrono::steady_clock::now() >= deadline) return false;
  }
}

// --- zero-copy sending of Python buffers ---

struct HeldBuffer {
  Py_buffer view;
};

std::mutex g_release_mu;
std::vector<HeldBuffer*> g_release;  // buffers libzmq is done with, released under the GIL

int ReleaseHeld(void*) {
  std::vector<HeldBuffer*> batch;
  {
    std::lock_guard<std::mutex> lock(g_release_mu);
    batch.swap(g_release);
  }
  for (HeldBuffer* h : batch) {
    PyBuffer_Release(&h->view);
    delete h;
  }
  return 0;
}

// libzmq's free function: may run on any thread, without the GIL.
void FreeHeld(void*, void* hint) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(g_release_mu);
    first = g_release.empty();
    g_release.push_back(static_cast<HeldBuffer*>(hint));
  }
  if (first) Py_AddPendingCall(ReleaseHeld, nullptr);
}

constexpr size_t kZeroCopyMin = 64 * 1024;

Frames ToFrames(const py::object& buffers) {
  Frames out;
  if (buffers.is_none()) return out;
  ReleaseHeld(nullptr);  // we hold the GIL: release what is done
  for (py::handle b : buffers) {
    auto* h = new HeldBuffer;
    if (PyObject_GetBuffer(b.ptr(), &h->view, PyBUF_C_CONTIGUOUS) != 0) {
      delete h;
      throw py::error_already_set();
    }
    size_t n = static_cast<size_t>(h->view.len);
    if (n < kZeroCopyMin) {
      out.emplace_back(h->view.buf, n);
      PyBuffer_Release(&h->view);
      delete h;
    } else {
      out.emplace_back(h->view.buf, n, FreeHeld, h);
    }
  }
  return out;
}

// --- received frames as read-only buffer objects ---

struct Frame {
  std::shared_ptr<const void> owner;  // keeps the message alive
  const zmq::message_t* msg;
};

py::list FramesOf(const ReplyPtr& r) {
  py::list out;
  for (size_t i = 0; i < r->num_buffers(); ++i) out.append(Frame{r, &r->buffer(i)});
  return out;
}

py::object Loads(std::string_view json_text) {
  // Leaked on purpose: a static py::object would be released after the interpreter ends.
  static auto* loads = new py::object(py::module_::import("json").attr("loads"));
  return (*loads)(py::str(json_text.data(), json_text.size()));
}

py::object JsonToPy(const Json& j) {
  if (j.is_null()) return py::none();
  return Loads(j.dump());
}

Json PyToJson(const py::object& o) {
  if (o.is_none()) return Json::object();
  std::string text;
  if (py::isinstance<py::str>(o)) {
    text = o.cast<std::string>();
  } else {
    static auto* dumps = new py::object(py::module_::import("json").attr("dumps"));
    text = (*dumps)(o).cast<std::string>();
  }
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) throw py::value_error("not JSON: " + text.substr(0, 80));
  return j;
}

Channel ChannelOf(const std::string& name) {
  if (name == "mux") return Channel::kMux;
  if (name == "task") return Channel::kTask;
  if (name == "control") return Channel::kControl;
  if (name == "broadcast") return Channel::kBroadcast;
  if (name == "query") return Channel::kQuery;
  throw py::value_error("unknown channel '" + name + "' (mux, task, control, broadcast, query)");
}

// A Python reference that is released under the GIL from whatever thread drops it.
struct GilRef {
  py::object obj;
  ~GilRef() {
    if (!obj || !Py_IsInitialized()) {
      obj.release();
      return;
    }
    py::gil_scoped_acquire gil;
    obj = py::object();
  }
};

// Closing joins the I/O thread, which may be waiting for the GIL to run a callback.
struct ClientDeleter {
  void operator()(Client* c) const {
    if (PyGILState_Check()) {
      py::gil_scoped_release nogil;
      delete c;
    } else {
      delete c;
    }
  }
};
using ClientHolder = std::unique_ptr<Client, ClientDeleter>;

struct PyFuture {
  Future<ReplyPtr> f;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "shoal's C++ client core (sockets, I/O thread, futures) for the Python API";
  g_shoal_error = PyErr_NewException("shoal._core.ShoalError", PyExc_RuntimeError, nullptr);
  m.attr("ShoalError") = py::reinterpret_borrow<py::object>(g_shoal_error);

  py::class_<Frame>(m, "Frame", py::buffer_protocol())
      .def_buffer([](Frame& f) {
        return py::buffer_info(const_cast<void*>(f.msg->data()), 1,
                               py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(f.msg->size())}, {1}, /*readonly=*/true);
      })
      .def("__len__", [](const Frame& f) { return f.msg->size(); })
      .def("bytes", [](const Frame& f) {
        return py::bytes(static_cast<const char*>(f.msg->data()), f.msg->size());
      });

  py::class_<Reply, std::shared_ptr<Reply>>(m, "Reply")
      .def_property_readonly("msg_id", &Reply::msg_id)
      .def_property_readonly("engine_uuid", &Reply::engine_uuid)
      .def_property_readonly("msg_type", &Reply::msg_type)
      .def_property_readonly("status", &Reply::status)
      .def_property_readonly("synthesized", &Reply::synthesized)
      .def_property_readonly("header", [](const Reply& r) { return Loads(r.header_json()); })
      .def_property_readonly("parent_header", [](const Reply& r) { return Loads(r.parent_json()); })
      .def_property_readonly("metadata", [](const Reply& r) { return Loads(r.metadata_json()); })
      .def_property_readonly("content", [](const Reply& r) { return Loads(r.content_json()); })
      .def_property_readonly("buffers",
                             [](std::shared_ptr<Reply> r) { return FramesOf(std::move(r)); })
      .def("__repr__", [](const Reply& r) {
        return "<Reply " + r.msg_type() + " " + r.msg_id() + " " + r.status() + ">";
      });

  py::class_<Outputs, std::shared_ptr<Outputs>>(m, "Outputs")
      .def_property_readonly("stdout", &Outputs::stdout_text)
      .def_property_readonly("stderr", &Outputs::stderr_text)
      .def_property_readonly("execute_input", &Outputs::execute_input)
      .def_property_readonly("execute_result",
                             [](const Outputs& o) { return JsonToPy(o.execute_result()); })
      .def_property_readonly("error", [](const Outputs& o) { return JsonToPy(o.error()); })
      .def_property_readonly("display_data",
                             [](const Outputs& o) {
                               py::list l;
                               for (const Json& j : o.display_data()) l.append(JsonToPy(j));
                               return l;
                             })
      .def_property_readonly("data",
                             [](const Outputs& o) {
                               py::list l;
                               for (const auto& d : o.data()) {
                                 py::list frames;
                                 for (const auto& b : d->buffers) frames.append(Frame{d, &b});
                                 l.append(py::make_tuple(JsonToPy(d->content), frames));
                               }
                               return l;
                             })
      .def_property_readonly("idle", &Outputs::idle)
      .def(
          "wait_idle",
          [](const Outputs& o, std::optional<double> timeout) {
            return WaitInterruptibly(timeout, [&](Micros s) { return o.WaitIdle(s); });
          },
          py::arg("timeout") = py::none());

  py::class_<PyFuture>(m, "Future")
      .def("done", [](const PyFuture& f) { return f.f.ready(); })
      .def(
          "wait",
          [](const PyFuture& f, std::optional<double> timeout) {
            return WaitInterruptibly(timeout, [&](Micros s) { return f.f.Wait(s); });
          },
          py::arg("timeout") = py::none())
      .def(
          "result",
          [](const PyFuture& f, std::optional<double> timeout) -> std::shared_ptr<Reply> {
            if (!WaitInterruptibly(timeout, [&](Micros s) { return f.f.Wait(s); }))
              RaiseStatus(Status::TimedOut("no reply within " + std::to_string(*timeout) + " s"));
            return std::const_pointer_cast<Reply>(Unwrap(f.f.Get(Micros(0))));
          },
          py::arg("timeout") = py::none())
      .def("add_done_callback", [](py::object self, py::function fn) {
        const PyFuture& f = self.cast<const PyFuture&>();
        auto ref = std::make_shared<GilRef>();
        ref->obj = py::make_tuple(fn, self);
        f.f.OnReady([ref](const Result<ReplyPtr>&) {
          if (!Py_IsInitialized()) return;
          py::gil_scoped_acquire gil;
          try {
            py::tuple t = ref->obj.cast<py::tuple>();
            t[0](t[1]);
          } catch (py::error_already_set& e) {
            e.discard_as_unraisable("shoal._core.Future done callback");
          }
        });
      });

  py::class_<Submitted>(m, "Submitted")
      .def_readonly("msg_id", &Submitted::msg_id)
      .def_readonly("engine_id", &Submitted::engine_id)
      .def_property_readonly("reply", [](const Submitted& s) { return PyFuture{s.reply}; })
      .def_readonly("outputs", &Submitted::outputs)
      .def(
          "wait",
          [](const Submitted& s, std::optional<double> timeout) {
            // reply and outputs; False on timeout, raises when the client failed it
            bool done = WaitInterruptibly(timeout, [&](Micros sl) {
              return s.reply.Wait(sl) && (!s.outputs || s.outputs->WaitIdle(sl));
            });
            if (done && !s.reply.Get(Micros(0)).ok()) RaiseStatus(s.reply.Get(Micros(0)).status());
            return done;
          },
          py::arg("timeout") = py::none());

  py::class_<Client, ClientHolder>(m, "ClientCore")
      .def(py::init([](std::string connection_file, std::string profile, std::string profile_dir,
                       std::string ipython_dir, std::string cluster_id, double timeout) {
             ConnectOptions o{connection_file, profile,    profile_dir,
                              ipython_dir,     cluster_id, timeout};
             Result<std::unique_ptr<Client>> c = Status::Internal("unset");
             {
               py::gil_scoped_release nogil;
               c = Client::Connect(o);
             }
             return ClientHolder(Unwrap(std::move(c)).release());
           }),
           py::kw_only(), py::arg("connection_file") = "", py::arg("profile") = "",
           py::arg("profile_dir") = "", py::arg("ipython_dir") = "", py::arg("cluster_id") = "",
           py::arg("timeout") = 10.0)
      .def_property_readonly("session", &Client::session)
      .def_property_readonly("ids", &Client::ids)
      .def_property_readonly("engines",
                             [](const Client& c) {
                               py::dict d;
                               for (const auto& e : c.engines()) d[py::int_(e.id)] = e.uuid;
                               return d;
                             })
      .def_property_readonly("outstanding", &Client::outstanding)
      .def(
          "wait_for_engines",
          [](const Client& c, size_t n, double timeout) {
            Status st;
            {
              py::gil_scoped_release nogil;
              st = c.WaitForEngines(n, ToMicros(timeout));
            }
            if (!st.ok()) RaiseStatus(st);
          },
          py::arg("n"), py::arg("timeout") = 60.0)
      .def(
          "send",
          [](Client& c, const std::string& channel, std::string msg_type, py::object content,
             py::object metadata, py::object buffers, std::vector<int> targets, bool coalescing) {
            Request r;
            r.channel = ChannelOf(channel);
            r.msg_type = std::move(msg_type);
            r.content = PyToJson(content);
            r.metadata = PyToJson(metadata);
            r.buffers = ToFrames(buffers);
            r.targets = std::move(targets);
            r.coalescing = coalescing;
            Result<std::vector<Submitted>> sent = Status::Internal("unset");
            {
              py::gil_scoped_release nogil;
              sent = c.Send(std::move(r));
            }
            return Unwrap(std::move(sent));
          },
          py::arg("channel"), py::arg("msg_type"), py::arg("content") = py::none(),
          py::arg("metadata") = py::none(), py::arg("buffers") = py::none(),
          py::arg("targets") = std::vector<int>{}, py::arg("coalescing") = false,
          "Sends one request; returns a list of Submitted (one per target engine).")
      .def(
          "execute",
          [](Client& c, std::vector<int> targets, std::string code, bool silent) {
            Result<std::vector<Submitted>> sent = Status::Internal("unset");
            {
              py::gil_scoped_release nogil;
              sent = c.Execute(targets, std::move(code), silent);
            }
            return Unwrap(std::move(sent));
          },
          py::arg("targets"), py::arg("code"), py::arg("silent") = false)
      .def(
          "close", [](Client& c) { c.Close(); }, py::call_guard<py::gil_scoped_release>());
}
