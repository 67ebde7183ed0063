// Connects to a running controller, lists its engines, runs code on all of them and prints
// what each printed.   usage: hello_engines <profile_dir | client.json> [code]
#include <chrono>
#include <iostream>

#include "shoal/client.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " <profile_dir | ipcontroller-client.json> [code]\n";
    return 2;
  }
  std::string where = argv[1];
  shoal::ConnectOptions opts;
  (where.size() > 5 && where.substr(where.size() - 5) == ".json" ? opts.connection_file
                                                                 : opts.profile_dir) = where;
  auto client = shoal::Client::Connect(opts);
  if (!client.ok()) {
    std::cerr << client.status().ToString() << "\n";
    return 1;
  }
  shoal::Client& c = **client;
  if (auto st = c.WaitForEngines(1, std::chrono::seconds(30)); !st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  for (const auto& e : c.engines()) std::cout << "engine " << e.id << " " << e.uuid << "\n";
  std::string code = argc > 2 ? argv[2] : "import os; print('hello from pid', os.getpid())";
  auto sent = c.Execute(c.ids(), code);
  if (!sent.ok()) return std::cerr << sent.status().ToString() << "\n", 1;
  int failures = 0;
  for (const auto& s : *sent) {
    shoal::Status st = s.Wait(std::chrono::seconds(30));
    if (st.ok()) st = (*s.reply.Get(std::chrono::seconds(0)))->error();
    if (auto out = s.outputs->stdout_text(); !out.empty())
      std::cout << "[engine " << s.engine_id << "] " << out;
    if (!st.ok()) std::cout << "[engine " << s.engine_id << "] " << st.ToString() << "\n";
    failures += !st.ok();
  }
  return failures ? 1 : 0;
}
