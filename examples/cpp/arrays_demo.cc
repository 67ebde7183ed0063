// Pushes a std::vector<double> to every engine (a numpy array there), scatters another,
// has the engines double their parts, and gathers the result back.
//   usage: arrays_demo <profile_dir>
#include <chrono>
#include <iostream>
#include <numeric>
#include <vector>

#include "shoal/arrays.h"

int main(int argc, char** argv) {
  if (argc != 2) return std::cerr << "usage: " << argv[0] << " <profile_dir>\n", 2;
  auto client = shoal::Client::Connect({.profile_dir = argv[1]});
  if (!client.ok()) return std::cerr << client.status().ToString() << "\n", 1;
  shoal::Client& c = **client;
  const auto timeout = std::chrono::seconds(30);
  if (auto st = c.WaitForEngines(1, timeout); !st.ok())
    return std::cerr << st.ToString() << "\n", 1;
  std::vector<int> all = c.ids();

  std::vector<double> x(1000);
  std::iota(x.begin(), x.end(), 0.0);
  if (auto st = shoal::PushDoubles(c, all, "x", x, timeout); !st.ok())
    return std::cerr << st.ToString() << "\n", 1;
  auto sent = c.Execute(all, "print(type(x).__name__, x.dtype, x.sum(), x.flags.writeable)");
  for (const auto& s : *sent)
    if (s.Wait(timeout).ok())
      std::cout << "engine " << s.engine_id << ": " << s.outputs->stdout_text();

  if (auto st = shoal::ScatterDoubles(c, all, "part", x, timeout); !st.ok())
    return std::cerr << st.ToString() << "\n", 1;
  for (const auto& s : *c.Execute(all, "doubled = part * 2")) (void)s.Wait(timeout);
  auto doubled = shoal::GatherDoubles(c, all, "doubled", timeout);
  if (!doubled.ok()) return std::cerr << doubled.status().ToString() << "\n", 1;
  bool ok = doubled->size() == x.size();
  for (size_t i = 0; ok && i < x.size(); ++i) ok = (*doubled)[i] == 2 * x[i];
  std::cout << "gathered " << doubled->size() << " doubles from " << all.size()
            << " engines: " << (ok ? "all doubled" : "WRONG") << "\n";

  auto missing = shoal::PullDoubles(c, all, "no_such_name", timeout);
  std::cout << "pull of an undefined name: " << missing.status().ToString() << "\n";
  return ok ? 0 : 1;
}
