#include "shoal/store/sqlite_status.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

namespace shoal::store {
namespace {

struct Case {
  int rc;
  bool ok;
  const char* text;  // expected in the message after the context
};

TEST(SqliteStatusTest, MapsEveryCodeToOkOrIOError) {
  const Case cases[] = {
      {SQLITE_OK, true, ""},
      {SQLITE_ROW, true, ""},
      {SQLITE_DONE, true, ""},
      {SQLITE_ERROR, false, "SQL logic error"},
      {SQLITE_FULL, false, "database or disk is full"},
      {SQLITE_CANTOPEN, false, "unable to open database file"},
      {SQLITE_READONLY, false, "attempt to write a readonly database"},
      {SQLITE_IOERR, false, "disk I/O error"},
      {SQLITE_IOERR_WRITE, false, "disk I/O error"},  // extended codes too
      {SQLITE_CORRUPT, false, "database disk image is malformed"},
      {SQLITE_NOTADB, false, "file is not a database"},
      {SQLITE_BUSY, false, "database is locked"},
      {SQLITE_CONSTRAINT_PRIMARYKEY, false, "constraint failed"},
      {SQLITE_NOMEM, false, "out of memory"},
      {SQLITE_TOOBIG, false, "too big"},
  };
  for (const Case& c : cases) {
    Status st = SqliteStatus(c.rc, nullptr, "writing x");
    EXPECT_EQ(st.ok(), c.ok) << c.rc;
    if (c.ok) continue;
    EXPECT_EQ(st.code(), StatusCode::kIOError) << c.rc;
    EXPECT_EQ(st.message().rfind("writing x: ", 0), 0u) << st.message();
    EXPECT_NE(st.message().find(c.text), std::string::npos) << st.message();
  }
}

TEST(SqliteStatusTest, AddsTheConnectionsDetailOnlyForTheSameFailure) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELEC 1", -1, &stmt, nullptr);
  Status st = SqliteStatus(rc, db, "preparing");
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("syntax error"), std::string::npos) << st.message();

  // The connection's last error is about something else: only the code's text is used.
  Status other = SqliteStatus(SQLITE_FULL, db, "committing");
  EXPECT_EQ(other.message(), "committing: database or disk is full");
  sqlite3_close(db);
}

}  // namespace
}  // namespace shoal::store
