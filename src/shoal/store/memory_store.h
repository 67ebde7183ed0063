// MemoryStore: the default RecordStore (IPython Parallel's DictDB), bounded by culling.
//
// Records live in a hash map; two ordered indexes (all records, finished records) keep Find
// and History sorted by "submitted" and make culling O(log n) per culled record.
//
// Culling (after each Add and Update):
//   * by count: when more than `record_limit` records are held, the oldest
//     max(1, cull_fraction * record_limit) finished records are dropped;
//   * by size: when the buffers + result_buffers bytes of all records exceed `size_limit`,
//     the oldest finished records are dropped until the total is at most
//     size_limit * (1 - cull_fraction).
// "Finished" means "completed" is set; "oldest" is by "submitted" (records without one go
// last, by insertion). Unfinished records are never culled, so a store full of pending tasks
// can stay above its limits until they finish. Get/Update/AppendText of a culled msg_id fail
// with kNotFound whose message says "culled" (the last `culled_id_limit` culled ids are
// remembered for that purpose). Unlike upstream DictDB, which culls pending tasks too.
//
// Ownership: records are held by value; Blobs share their bytes with the caller.
// Thread rule: not thread-safe (see RecordStore).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "shoal/store/query.h"
#include "shoal/store/record_store.h"

namespace shoal::store {

struct MemoryStoreOptions {
  size_t record_limit = 1024;
  size_t size_limit = size_t{1} << 30;  // bytes of buffers + result_buffers
  double cull_fraction = 0.1;           // clamped to [0, 1]
  size_t culled_id_limit = 100'000;     // culled msg_ids remembered for error messages
};

class MemoryStore final : public RecordStore {
 public:
  explicit MemoryStore(MemoryStoreOptions options = {});

  Status Add(const std::string& msg_id, Record record) override;
  Status Update(const std::string& msg_id, RecordUpdate update) override;
  Status AppendText(const std::string& msg_id, std::string_view key,
                    std::string_view text) override;
  Result<Record> Get(const std::string& msg_id) override;
  Result<std::vector<Record>> Find(const Json& query,
                                   const std::optional<std::vector<std::string>>& keys) override;
  Result<size_t> DropMatching(const Json& query) override;
  Status Drop(const std::string& msg_id) override;
  Result<std::vector<std::string>> History() override;
  size_t Size() const override { return records_.size(); }

  // Bytes of buffers + result_buffers currently held (what size culling measures).
  size_t buffer_bytes() const { return bytes_; }

 private:
  // Position in "submitted" order; records without a date sort after all dated ones.
  struct OrderKey {
    bool undated;
    Micros submitted;
    uint64_t seq;  // insertion order, the tie-breaker
    auto operator<=>(const OrderKey&) const = default;
  };

  struct Entry {
    Record record;
    std::string_view id;  // views the map key, which is stable for the entry's life
    OrderKey order;
    bool finished = false;
    size_t bytes = 0;
  };

  Status Missing(const std::string& msg_id) const;
  OrderKey KeyFor(const Json& fields, uint64_t seq) const;
  // Inserts `e` into the order indexes under its current key and finished flag.
  void Index(Entry& e);
  void Unindex(const Entry& e);
  // Matching entries in "submitted" order.
  Result<std::vector<Entry*>> Match(const Json& query);
  void Remove(Entry& e);
  void MaybeCull();
  void CullOldestFinished();

  MemoryStoreOptions options_;
  std::unordered_map<std::string, Entry> records_;
  std::map<OrderKey, Entry*> order_;     // every record
  std::map<OrderKey, Entry*> finished_;  // records with "completed" set: the cull candidates
  uint64_t next_seq_ = 0;
  size_t bytes_ = 0;
  std::unordered_set<std::string> culled_;
  std::deque<std::string> culled_fifo_;  // eviction order of culled_
};

}  // namespace shoal::store
