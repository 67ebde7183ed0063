#include "shoal/store/sqlite_status.h"

#include <sqlite3.h>

#include <string>

namespace shoal::store {

Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return Status::Ok();
  std::string message(context);
  message += ": ";
  message += sqlite3_errstr(rc);
  // The connection's message is specific only when it describes this same failure; after a
  // later successful call it would describe something else (or say "not an error").
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      message += " (";
      message += detail;
      message += ")";
    }
  }
  return Status::IOError(std::move(message));
}

}  // namespace shoal::store
