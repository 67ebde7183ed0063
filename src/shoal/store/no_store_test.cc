#include "shoal/store/no_store.h"

#include <gtest/gtest.h>

namespace shoal::store {
namespace {

TEST(NoStoreTest, WritesSucceedAndReadsSayNothingIsStored) {
  NoStore store;
  EXPECT_TRUE(store.Add("m1", Record{{{"queue", "task"}}, {}, {}}).ok());
  EXPECT_TRUE(store.Add("m1", Record{}).ok());  // nothing kept, so no duplicate either
  EXPECT_TRUE(store.Update("m1", RecordUpdate{}).ok());
  EXPECT_TRUE(store.AppendText("m1", "stdout", "x").ok());
  EXPECT_TRUE(store.Drop("m1").ok());
  auto dropped = store.DropMatching(Json::object());
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 0u);
  EXPECT_EQ(store.Size(), 0u);
  EXPECT_TRUE(store.Flush().ok());

  for (Status st : {store.Get("m1").status(), store.Find(Json::object(), std::nullopt).status(),
                    store.History().status()}) {
    EXPECT_EQ(st.code(), StatusCode::kNotFound);
    EXPECT_NE(st.message().find("NoDB backend doesn't store any data"), std::string::npos);
  }
}

}  // namespace
}  // namespace shoal::store
