// Where the controller is: the engine connection info from $IPP_CONNECTION_INFO, --file or
// the profile's engine file (waiting for it to appear), with --url, --location and
// --Session.key applied.
// Thread rule: plain functions.
#pragma once

#include <string>

#include "shoal/engine/options.h"
#include "shoal/status.h"
#include "shoal/wire/connection_file.h"

namespace shoal::engine {

struct ControllerAddress {
  wire::ConnectionInfo info;     // interface already connectable
  std::string registration_url;  // where to send registration_request
  std::string source;            // the file (or "$IPP_CONNECTION_INFO") it came from
};

// kNotFound when no file appears within wait_for_url_file_s; kInvalidArgument for a file
// that is not an engine connection file.
Result<ControllerAddress> LocateController(const EngineOptions& options);

// An interface a client can connect to: a wildcard bind address ("tcp://0.0.0.0",
// "tcp://*") becomes the controller's `location`, or 127.0.0.1 when that is this machine.
std::string ConnectableInterface(const std::string& interface, const std::string& location,
                                 const std::string& this_host);

}  // namespace shoal::engine
