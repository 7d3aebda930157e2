// symgrad: train and evaluate image classifiers described by a JSON config.
//
//   symgrad train CONFIG.json [--out DIR] [--epochs N] [--threads N] [--resume] [--quiet]
//   symgrad eval MODEL CONFIG.json [--threads N]
//   symgrad summary CONFIG.json
//   symgrad audit MODEL CONFIG.json [--json PATH] [--float32] [--batch N] [--cond C]
//                 [--no-fold] [--threads N]
//
// Example configs live in examples/configs/. Besides nn's layers, a config's "model" may
// be a PDE ResNet, e.g. {"type": "PDEResNet", "preset": "B"} (pde/pde_resnet.hpp lists
// its keys; "block": "basic" gives the ReLU baseline). A training run writes into its output
// directory: model.cbor (the final weights), checkpoint.cbor (weights, optimizer state
// and history after the last finished epoch: --resume continues from it),
// metrics.jsonl, curves.svg, config.json (the config with every default filled in)
// and summary.txt (the model summary).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pde/model_types.hpp"

namespace {

const char* kUsage =
    "usage:\n"
    "  symgrad train CONFIG.json [--out DIR] [--epochs N] [--threads N] [--resume] [--quiet]\n"
    "      Trains the model the config describes and writes model.cbor, checkpoint.cbor,\n"
    "      metrics.jsonl, curves.svg, config.json and summary.txt into the output directory\n"
    "      (--out, else the config's \"out_dir\", else runs/<config name>). --resume continues\n"
    "      from the directory's checkpoint.cbor. Progress goes to stderr.\n"
    "  symgrad eval MODEL CONFIG.json [--threads N]\n"
    "      Test loss, accuracy and a per-class confusion summary of saved weights (model.cbor).\n"
    "  symgrad summary CONFIG.json\n"
    "      The model's layers and parameter counts, and the shape one image comes out as.\n"
    "  symgrad audit MODEL CONFIG.json [--json PATH] [--float32] [--batch N] [--cond C] [--no-fold]\n"
    "                [--threads N]\n"
    "      Audits the gradients of saved weights through every weight symmetry the model has\n"
    "      (invariance, orbit orthogonality, orbit derivative, covariance; symmetry/audit.hpp):\n"
    "      a table, and JSON (--json, else audit.json next to MODEL). float64 by default; a\n"
    "      PDEResNet's BatchNorms are folded first. Exit code 1 if a symmetry is broken.\n"
    "  symgrad --help\n"
    "\n"
    "Config keys: model, optimizer (required); schedule, data {dataset, dir, batch_size,\n"
    "test_batch_size, mean, std, crop_padding, horizontal_flip}, epochs, seed, threads, dtype,\n"
    "out_dir, label_smoothing, clip_grad_norm, log_every_steps. Model types: nn's layers and\n"
    "PDEResNet ({\"type\": \"PDEResNet\", \"preset\": \"B\" | \"G\", ...}). See examples/configs/.\n";

// A usage mistake: printed with the usage, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

long positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 1'000'000)
    throw UsageError(flag + " wants a positive integer, got '" + text + "'");
  return value;
}

// Splits arguments into positionals and --flags; `valued` flags take the next argument.
struct Parsed {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
};

Parsed parse(const std::vector<std::string>& args, const std::vector<std::string>& valued,
             const std::vector<std::string>& switches) {
  Parsed p;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      p.positional.push_back(a);
      continue;
    }
    bool known = false;
    for (const std::string& v : valued)
      if (a == v) {
        if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
        p.flags.emplace_back(a, args[++i]);
        known = true;
      }
    for (const std::string& s : switches)
      if (a == s) {
        p.flags.emplace_back(a, "");
        known = true;
      }
    if (!known) throw UsageError("unknown option " + a);
  }
  return p;
}

int dispatch(const std::vector<std::string>& args) {
  if (args.empty()) throw UsageError("no command given");
  const std::string command = args.front();
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  for (const std::string& a : rest)
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  if (command == "train") {
    const Parsed p = parse(rest, {"--out", "--epochs", "--threads"}, {"--resume", "--quiet"});
    if (p.positional.size() != 1) throw UsageError("train takes one CONFIG.json");
    symgrad::cli::TrainArgs t;
    t.config_path = p.positional[0];
    for (const auto& [flag, value] : p.flags) {
      if (flag == "--out") t.out_dir = value;
      if (flag == "--epochs") t.epochs = positive(flag, value);
      if (flag == "--threads") t.threads = static_cast<int>(positive(flag, value));
      if (flag == "--resume") t.resume = true;
      if (flag == "--quiet") t.quiet = true;
    }
    return symgrad::cli::run_train(t);
  }
  if (command == "eval") {
    const Parsed p = parse(rest, {"--threads"}, {});
    if (p.positional.size() != 2) throw UsageError("eval takes MODEL and CONFIG.json");
    int threads = 0;
    for (const auto& [flag, value] : p.flags) threads = static_cast<int>(positive(flag, value));
    return symgrad::cli::run_eval(p.positional[0], p.positional[1], threads);
  }
  if (command == "summary") {
    const Parsed p = parse(rest, {}, {});
    if (p.positional.size() != 1) throw UsageError("summary takes one CONFIG.json");
    return symgrad::cli::run_summary(p.positional[0]);
  }
  if (command == "audit") {
    const Parsed p = parse(rest, {"--json", "--batch", "--cond", "--threads"}, {"--float32", "--no-fold"});
    if (p.positional.size() != 2) throw UsageError("audit takes MODEL and CONFIG.json");
    symgrad::cli::AuditArgs a;
    a.model_path = p.positional[0];
    a.config_path = p.positional[1];
    for (const auto& [flag, value] : p.flags) {
      if (flag == "--json") a.json_path = value;
      if (flag == "--batch") a.batch = positive(flag, value);
      if (flag == "--cond") {
        char* end = nullptr;
        a.condition_number = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !(a.condition_number >= 1))
          throw UsageError("--cond wants a number >= 1, got '" + value + "'");
      }
      if (flag == "--threads") a.threads = static_cast<int>(positive(flag, value));
      if (flag == "--float32") a.float64 = false;
      if (flag == "--no-fold") a.fold = false;
    }
    return symgrad::cli::run_audit(a);
  }
  throw UsageError("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    symgrad::pde::register_model_types();  // configs may then say {"type": "PDEResNet", ...}
    return dispatch(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "symgrad: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "symgrad: error: %s\n", e.what());
    return 1;
  }
}
