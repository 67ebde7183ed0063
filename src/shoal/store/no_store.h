// NoStore: a RecordStore that keeps nothing (IPython Parallel's NoDB), for controllers that
// need no result persistence and want the smallest footprint.
//
// Writes (Add, Update, AppendText, Drop, DropMatching) succeed and are discarded; reads (Get,
// Find, History) fail with kNotFound "NoDB backend doesn't store any data", which the
// controller relays to clients as error content, as upstream does.
// Thread rule: stateless; safe from any thread.
#pragma once

#include "shoal/store/record_store.h"

namespace shoal::store {

class NoStore final : public RecordStore {
 public:
  Status Add(const std::string& msg_id, Record record) override { return Status::Ok(); }
  Status Update(const std::string& msg_id, RecordUpdate update) override { return Status::Ok(); }
  Status AppendText(const std::string& msg_id, std::string_view key,
                    std::string_view text) override {
    return Status::Ok();
  }
  Result<Record> Get(const std::string& msg_id) override { return NoData(); }
  Result<std::vector<Record>> Find(const Json& query,
                                   const std::optional<std::vector<std::string>>& keys) override {
    return NoData();
  }
  Result<size_t> DropMatching(const Json& query) override { return size_t{0}; }
  Status Drop(const std::string& msg_id) override { return Status::Ok(); }
  Result<std::vector<std::string>> History() override { return NoData(); }
  size_t Size() const override { return 0; }

  // The error every read returns.
  static Status NoData();
};

}  // namespace shoal::store
