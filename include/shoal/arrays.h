// Moving float64 arrays between a C++ program and the engines' Python namespaces.
//
//   shoal::Client& c = ...;
//   std::vector<double> x(1000, 1.0);
//   shoal::PushDoubles(c, c.ids(), "x", x, std::chrono::seconds(10));    // numpy arrays there
//   shoal::ScatterDoubles(c, c.ids(), "part", x, std::chrono::seconds(10));
//   auto whole = shoal::GatherDoubles(c, c.ids(), "part", std::chrono::seconds(10));
//
// On the engines a pushed or scattered array is a read-only numpy.float64 array (built on
// the received frame, no copy); pulled and gathered values may be anything numpy can turn
// into a float64 array (arrays, lists, scalars), flattened. Scatter partitions as IPython
// Parallel's default map does: contiguous parts whose sizes differ by at most one, the
// first n % k engines taking one more.
//
// Payloads use shoal's own format ("shoal-pickle5", docs/protocol.md), so these need
// shoal-engines (stock ipengines reject the format). Every call blocks up to `timeout`
// for all the engines' replies; it is safe from several threads (as Client::Send is).
// Errors: what Client::Send returns (kNotFound for an unknown engine id, kInvalidArgument
// for no targets); kTimedOut; kRemoteError with the engine's "ename: evalue" (e.g.
// "NameError: name 'y' is not defined"); kInvalidArgument when a pulled value is not
// convertible to float64.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "shoal/client.h"
#include "shoal/status.h"

namespace shoal {

// Assigns `name` = `values` (a float64 array) on every engine in `targets`.
Status PushDoubles(Client& client, const std::vector<int>& targets, const std::string& name,
                   std::span<const double> values, Micros timeout);

// The value of `name` (any expression) on each engine of `targets`, in that order.
Result<std::vector<std::vector<double>>> PullDoubles(Client& client,
                                                     const std::vector<int>& targets,
                                                     const std::string& name, Micros timeout);

// Assigns engine targets[p] its part p of `values` as `name`.
Status ScatterDoubles(Client& client, const std::vector<int>& targets, const std::string& name,
                      std::span<const double> values, Micros timeout);

// The parts of `name` on `targets`, concatenated in the order of `targets`.
Result<std::vector<double>> GatherDoubles(Client& client, const std::vector<int>& targets,
                                          const std::string& name, Micros timeout);

// [low, high) of part `p` of `parts` over `n` items (IPython Parallel's 'b' partition).
std::pair<size_t, size_t> PartitionBounds(size_t n, size_t p, size_t parts);

namespace pickle5 {
// The frames of a shoal-pickle5 apply_request that runs shoal._remote.push({name: array}).
Frames PushRequest(const std::string& name, std::span<const double> values);
// The frames of a shoal-pickle5 apply_request that runs shoal._remote.pull_float64(name).
Frames PullRequest(const std::string& name);
// The doubles in a reply to PullRequest: `frames` are the reply's buffers (the pickle of
// a bytes object, and its out-of-band frame when it was large). kInvalidArgument when
// they are not that shape.
Result<std::vector<double>> ParseBytesReply(const std::vector<std::string_view>& frames);
}  // namespace pickle5

}  // namespace shoal
