// Helpers every RecordStore backend shares, so that all of them accept, reject and shape
// records the same way (the contract test checks this).
//
// Pure functions; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shoal/common/clock.h"
#include "shoal/status.h"
#include "shoal/store/record_store.h"

namespace shoal::store {

// How a key's value is kept. kText keys normally hold strings, kJson keys dicts, kDate keys ISO
// date strings; only kDate is enforced (null or a parseable date), the others take any JSON.
enum class FieldKind { kText, kJson, kDate };

// Position of `key` in kRecordKeys, or -1 when it is not a record key.
int RecordKeyIndex(std::string_view key);

// The kind of a record key; precondition: RecordKeyIndex(key) >= 0.
FieldKind KindOfKey(std::string_view key);

// Checks fields for Add/Update: an object whose keys are all in kRecordKeys, date keys null or
// ISO dates, and "msg_id" (when present) equal to `msg_id`. kInvalidArgument otherwise.
Status ValidateFields(const Json& fields, const std::string& msg_id);

// Checks a Find projection: every key in kRecordKeys or "buffers"/"result_buffers".
Status ValidateProjection(const std::vector<std::string>& keys);

// Checks that AppendText may target `key`: a kText key other than "msg_id".
Status ValidateAppendKey(std::string_view key);

// The instant of the date under `key`, or nullopt when null/absent/unparseable.
std::optional<Micros> DateOf(const Json& fields, std::string_view key);

// True when `key` is present and not null.
bool HasValue(const Json& fields, std::string_view key);

// `fields` with every key of kRecordKeys present (absent ones as null): the shape that
// Get and an unprojected Find return, identical across backends.
Json CompleteFields(const Json& fields);

// "msg_id" plus each key of `keys` that is a record key (absent ones as null).
Json ProjectFields(const Json& fields, const std::vector<std::string>& keys);

// Whether `keys` names `name`.
bool Names(const std::vector<std::string>& keys, std::string_view name);

// Total byte size of a buffer list.
size_t BufferBytes(const std::vector<Blob>& buffers);

}  // namespace shoal::store
