#include "shoal/store/no_store.h"

namespace shoal::store {

Status NoStore::NoData() {
  // Upstream's wording, which clients may show to users.
  return Status::NotFound(
      "NoDB backend doesn't store any data. Start the Controller with a DB backend to enable "
      "resubmission / result persistence.");
}

}  // namespace shoal::store
