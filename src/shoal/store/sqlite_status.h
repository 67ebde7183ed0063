// SqliteStatus: the one place where a SQLite result code becomes a shoal Status.
//
// Every sqlite3_* call in the store passes its return code through here, so that all SQLite
// failures read the same way: kIOError "<context>: <sqlite's text for the code>" followed by
// the connection's own message when it adds detail (e.g. "near \"SELEC\": syntax error").
// Pure function; safe from any thread that may use `db`.
#pragma once

#include <string_view>

#include "shoal/status.h"

struct sqlite3;

namespace shoal::store {

// OK for SQLITE_OK, SQLITE_ROW and SQLITE_DONE; kIOError for every other code (primary or
// extended). `db` may be null (e.g. when sqlite3_open_v2 could not allocate a connection).
Status SqliteStatus(int rc, sqlite3* db, std::string_view context);

}  // namespace shoal::store
