// Identifiers on the wire: session ids ("8hex-24hex", also engine uuids and HMAC keys) and
// message ids ("<session>_<pid>_<counter>", safe inside Python identifiers after '-' -> '_').
// Thread rule: safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace shoal::wire {

// 16 random bytes as "xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx" (jupyter_client's new_id()).
std::string NewSessionId();

// A process-unique message id for a message sent by `session`.
std::string NewMsgId(std::string_view session);

// True when every character is in [A-Za-z0-9_-] and the id is not empty.
bool IsSafeMsgId(std::string_view id);

}  // namespace shoal::wire
