#include "shoal/common/cli_args.h"

#include <cstdlib>

namespace shoal::cli {

std::optional<std::string> GetEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

std::vector<Arg> SplitArgs(const std::vector<std::string>& args) {
  std::vector<Arg> out;
  out.reserve(args.size());
  for (const std::string& a : args) {
    Arg arg;
    arg.text = a;
    if (a == "-h") {
      arg.name = "h";
    } else if (a.rfind("--", 0) == 0) {
      std::string body = a.substr(2);
      arg.name = body;
      if (auto eq = body.find('='); eq != std::string::npos) {
        arg.name = body.substr(0, eq);
        arg.value = body.substr(eq + 1);
        arg.has_value = true;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      // Single-dash short options (-c CODE, -s FILE) as IPython apps accept them.
      arg.name = a.substr(1);
      if (auto eq = arg.name.find('='); eq != std::string::npos) {
        arg.value = arg.name.substr(eq + 1);
        arg.name = arg.name.substr(0, eq);
        arg.has_value = true;
      }
    } else {
      arg.positional = true;
      arg.value = a;
    }
    out.push_back(std::move(arg));
  }
  return out;
}

std::string Unquote(std::string v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
    return v.substr(1, v.size() - 2);
  return v;
}

Result<int> ToInt(const std::string& name, const std::string& v) {
  try {
    size_t used = 0;
    long long x = std::stoll(v, &used);
    if (used == v.size()) return static_cast<int>(x);
  } catch (...) {
  }
  return Status::InvalidArgument("--" + name + ": expected an integer, got '" + v + "'");
}

Result<double> ToDouble(const std::string& name, const std::string& v) {
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  return Status::InvalidArgument("--" + name + ": expected a number, got '" + v + "'");
}

Result<bool> ToBool(const std::string& name, const std::string& v) {
  if (v == "True" || v == "true" || v == "1") return true;
  if (v == "False" || v == "false" || v == "0") return false;
  return Status::InvalidArgument("--" + name + ": expected True or False, got '" + v + "'");
}

}  // namespace shoal::cli
