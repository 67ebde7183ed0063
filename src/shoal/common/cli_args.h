// Pieces shared by the `ipcontroller` and `ipengine` command-line parsers: the traitlets-style
// argument splitter and typed value conversion with error messages that name the option.
//
// Accepted forms: `--name=value`, `--name value` (for options that take a value),
// `--flag`, `--Class.trait=value`, and `-h`.
// Pure: nothing here reads the process environment except GetEnv.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shoal/status.h"

namespace shoal::cli {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The real environment.
std::optional<std::string> GetEnv(const std::string& name);

// One command-line argument after splitting "--name=value".
struct Arg {
  std::string text;   // as given, for messages
  std::string name;   // without the leading dashes
  std::string value;  // "" when !has_value
  bool has_value = false;
  bool positional = false;  // did not start with "-"
};

// Splits every argument; positional arguments are kept with positional = true.
std::vector<Arg> SplitArgs(const std::vector<std::string>& args);

// Removes one level of matching single or double quotes ("'x'" -> "x").
std::string Unquote(std::string v);

// Conversions; kInvalidArgument naming `--name` when `v` is not a whole number / number /
// boolean (True/False/true/false/1/0).
Result<int> ToInt(const std::string& name, const std::string& v);
Result<double> ToDouble(const std::string& name, const std::string& v);
Result<bool> ToBool(const std::string& name, const std::string& v);

}  // namespace shoal::cli
