// ResultBook: the client's bookkeeping of requests in flight, keyed by msg_id.
//
// It matches replies (by parent msg_id; a coalesced broadcast reply by its
// metadata.original_msg_id) to the promise of the request, collects the iopub output each
// request causes into its Outputs, and fails the requests stranded on an engine that
// unregisters with a synthesized EngineError reply. An entry is forgotten once its reply and
// its outputs (the engine's `status: idle`) are both in.
//
// No sockets and no clock: the I/O thread feeds it decoded messages, tests feed it by hand.
// Thread rule: owned by one thread (the client's I/O thread). The promises it completes and
// the Outputs it fills are thread safe themselves.
#pragma once

#include <string>
#include <unordered_map>
#include <unordered_set>

#include "shoal/client.h"
#include "shoal/wire/message.h"

namespace shoal::client {

// One request (or one engine's part of a broadcast) the client waits for.
struct Track {
  std::string msg_id;
  Channel channel = Channel::kMux;
  std::string request_type;    // e.g. apply_request (names the synthesized reply type)
  std::string request_header;  // JSON text: the parent of a synthesized reply
  std::string engine_uuid;     // the target engine; "" for task and hub requests
  int engine_id = -1;
  bool coalescing = false;  // a coalescing broadcast: the reply answers the whole request
  Promise<ReplyPtr> promise;
  OutputsPtr outputs;  // null when no iopub output is expected
};

class ResultBook {
 public:
  explicit ResultBook(std::string session) : session_(std::move(session)) {}

  void Add(Track track);

  // A reply from mux, task, control, broadcast or the hub, decoded with header and parent
  // parsed. Completes the matching promise; false when it answers nothing outstanding
  // (a late or foreign reply; the caller logs it).
  bool OnReply(wire::Message&& msg);

  // An iopub message decoded with header, parent and content parsed. Messages whose parent
  // is not from this client's session, or not outstanding, are ignored (false).
  bool OnIopub(wire::Message&& msg);

  // Engine `uuid` (id `id`) unregistered: every request addressed to it that has no reply
  // gets an EngineError reply "Engine <id> died while running task '<msg_id>'", followed by
  // " (<reason>)" when the controller gave one, and every request addressed to it stops
  // waiting for output. Returns how many were failed.
  size_t OnEngineGone(int id, const std::string& uuid, const std::string& reason);

  // Fails one request (e.g. it could not be sent) and forgets it.
  void Fail(const std::string& msg_id, const Status& status);

  // Completes every outstanding promise with `status` and marks every Outputs idle.
  void FailAll(const Status& status);

  size_t outstanding() const { return entries_.size(); }

 private:
  struct Entry {
    Track track;
    bool replied = false;
    bool idle = false;
  };
  void Deliver(Entry& e, ReplyPtr reply);
  void MaybeForget(const std::string& msg_id);
  void Forget(std::unordered_map<std::string, Entry>::iterator it);
  ReplyPtr EngineErrorReply(const Track& t, int id, const std::string& uuid,
                            const std::string& reason) const;

  std::string session_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<std::string, std::unordered_set<std::string>> by_engine_;  // uuid -> ids
};

// The reply type of a request type: "apply_request" -> "apply_reply".
std::string ReplyTypeFor(std::string_view request_type);

}  // namespace shoal::client
