// MemoryStore-specific behaviour: culling. The shared contract is in
// record_store_contract_test.cc.
#include "shoal/store/memory_store.h"

#include <gtest/gtest.h>

#include <string>

#include "shoal/store/store_test_util.h"

namespace shoal::store {
namespace {

using test_util::Completed;
using test_util::Submitted;

std::string Id(int i) { return "m" + std::to_string(i); }

// Adds finished records Id(first) .. Id(first+n-1), submitted at their index, each with one
// request buffer of `buffer_size` bytes and no result buffers.
void AddFinished(MemoryStore& store, int first, int n, size_t buffer_size = 10) {
  for (int i = first; i < first + n; ++i) {
    Record r = Submitted(Id(i), i, std::string(buffer_size, 'x'));
    r.fields["completed"] = test_util::Date(i + 0.5);
    ASSERT_TRUE(store.Add(Id(i), std::move(r)).ok());
  }
}

size_t HistorySize(MemoryStore& store) {
  auto h = store.History();
  EXPECT_TRUE(h.ok());
  return h.ok() ? h->size() : 0;
}

TEST(MemoryStoreTest, CullsOldestFinishedByCount) {
  MemoryStore store({.record_limit = 20, .cull_fraction = 0.2});
  AddFinished(store, 0, 20);
  EXPECT_EQ(HistorySize(store), 20u);
  AddFinished(store, 20, 1);
  EXPECT_EQ(HistorySize(store), 17u);  // 0.2 * 20 = 4 culled: m0..m3
  for (int i = 0; i < 4; ++i) {
    Status st = store.Get(Id(i)).status();
    EXPECT_EQ(st.code(), StatusCode::kNotFound);
    EXPECT_NE(st.message().find("culled"), std::string::npos) << st.message();
  }
  EXPECT_TRUE(store.Get(Id(4)).ok());
  AddFinished(store, 21, 3);
  EXPECT_EQ(HistorySize(store), 20u);
  AddFinished(store, 24, 1);
  EXPECT_EQ(HistorySize(store), 17u);
  for (int i = 25; i < 50; ++i) {
    AddFinished(store, i, 1);
    EXPECT_GE(store.Size(), 17u);
    EXPECT_LE(store.Size(), 20u);
  }
}

TEST(MemoryStoreTest, CullsBySubmittedNotByInsertion) {
  MemoryStore store({.record_limit = 4, .cull_fraction = 0.25});
  for (int i : {3, 1, 4, 2}) AddFinished(store, i, 1);
  AddFinished(store, 5, 1);
  EXPECT_EQ(store.Get(Id(1)).status().code(), StatusCode::kNotFound);
  for (int i : {2, 3, 4, 5}) EXPECT_TRUE(store.Get(Id(i)).ok()) << i;
}

TEST(MemoryStoreTest, NeverCullsUnfinishedRecords) {
  MemoryStore store({.record_limit = 10, .cull_fraction = 0.2});
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(store.Add(Id(i), Submitted(Id(i), i)).ok());
  EXPECT_EQ(store.Size(), 30u);  // over the limit, but all pending

  // As they finish, the oldest finished ones go, two at a time (0.2 * 10).
  ASSERT_TRUE(store.Update(Id(5), Completed(40)).ok());
  EXPECT_EQ(store.Size(), 29u);
  EXPECT_EQ(store.Get(Id(5)).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store.Update(Id(7), Completed(41)).ok());
  ASSERT_TRUE(store.Update(Id(6), Completed(41)).ok());
  EXPECT_EQ(store.Size(), 27u);
  for (int i = 0; i < 30; ++i) {
    if (i >= 5 && i <= 7) continue;
    EXPECT_TRUE(store.Get(Id(i)).ok()) << i;
  }
}

TEST(MemoryStoreTest, CullsBySizeToNinetyPercent) {
  MemoryStore store({.size_limit = 1000, .cull_fraction = 0.2});
  AddFinished(store, 0, 100, 10);
  EXPECT_EQ(HistorySize(store), 100u);
  EXPECT_EQ(store.buffer_bytes(), 1000u);
  AddFinished(store, 100, 1, 0);
  EXPECT_EQ(HistorySize(store), 101u);
  AddFinished(store, 101, 1, 1);  // 1001 bytes: cull to <= 800, i.e. 21 records
  EXPECT_EQ(HistorySize(store), 81u);
  EXPECT_EQ(store.buffer_bytes(), 791u);
  EXPECT_NE(store.Get(Id(0)).status().message().find("culled"), std::string::npos);
  EXPECT_TRUE(store.Get(Id(21)).ok());
}

TEST(MemoryStoreTest, SizeTracksDropsAndUpdates) {
  MemoryStore store({.size_limit = 1000, .cull_fraction = 0.2});
  AddFinished(store, 0, 100, 10);
  ASSERT_TRUE(store.Drop(Id(99)).ok());
  EXPECT_EQ(store.buffer_bytes(), 990u);
  AddFinished(store, 100, 1, 5);
  AddFinished(store, 101, 1, 5);
  EXPECT_EQ(HistorySize(store), 101u);  // exactly 1000 bytes: not over

  RecordUpdate grow;
  grow.result_buffers = std::vector<Blob>{Blob::Copy(std::string(11, 'r'))};
  grow.buffers = std::vector<Blob>{};
  ASSERT_TRUE(store.Update(Id(98), std::move(grow)).ok());  // 1001 bytes
  EXPECT_LE(store.buffer_bytes(), 800u);
  EXPECT_EQ(HistorySize(store), 80u);

  auto dropped = store.DropMatching(Json::object());
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(store.buffer_bytes(), 0u);
}

TEST(MemoryStoreTest, SizeCullingSkipsUnfinishedRecords) {
  MemoryStore store({.size_limit = 100, .cull_fraction = 0.1});
  ASSERT_TRUE(store.Add("pending", Submitted("pending", 0, std::string(500, 'p'))).ok());
  AddFinished(store, 1, 3, 10);
  // Over the limit because of the pending record: every finished one goes, it stays.
  EXPECT_EQ(store.Size(), 1u);
  EXPECT_TRUE(store.Get("pending").ok());
  EXPECT_EQ(store.buffer_bytes(), 500u);
}

TEST(MemoryStoreTest, DroppedIsNotReportedAsCulledAndReAddClearsCulled) {
  MemoryStore store({.record_limit = 2, .cull_fraction = 0.5});
  AddFinished(store, 0, 3);  // m0 culled
  EXPECT_NE(store.Get(Id(0)).status().message().find("culled"), std::string::npos);
  EXPECT_NE(store.Update(Id(0), Completed(9)).message().find("culled"), std::string::npos);
  EXPECT_NE(store.AppendText(Id(0), "stdout", "x").message().find("culled"), std::string::npos);

  ASSERT_TRUE(store.Drop(Id(2)).ok());
  Status st = store.Get(Id(2)).status();
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message().find("culled"), std::string::npos);

  ASSERT_TRUE(store.Add(Id(0), Submitted(Id(0), 100)).ok());
  ASSERT_TRUE(store.Drop(Id(0)).ok());
  EXPECT_EQ(store.Get(Id(0)).status().message().find("culled"), std::string::npos);
}

TEST(MemoryStoreTest, RemembersABoundedNumberOfCulledIds) {
  MemoryStore store({.record_limit = 1, .cull_fraction = 1.0, .culled_id_limit = 3});
  AddFinished(store, 0, 10);  // m0..m8 culled; only m6..m8 remembered
  EXPECT_EQ(store.Get(Id(5)).status().message().find("culled"), std::string::npos);
  EXPECT_NE(store.Get(Id(8)).status().message().find("culled"), std::string::npos);
}

TEST(MemoryStoreTest, ManyPendingTasksStayFast) {
  // Culling must not rescan pending records on every Add (that would be quadratic here).
  MemoryStore store({.record_limit = 100});
  for (int i = 0; i < 20'000; ++i) ASSERT_TRUE(store.Add(Id(i), Submitted(Id(i), i)).ok());
  EXPECT_EQ(store.Size(), 20'000u);
  for (int i = 0; i < 20'000; ++i) ASSERT_TRUE(store.Update(Id(i), Completed(i + 1)).ok());
  EXPECT_LE(store.Size(), 100u);
}

}  // namespace
}  // namespace shoal::store
